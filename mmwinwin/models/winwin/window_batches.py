"""The window step every Win-Win model shares: window tokens in, per-window feature maps and
cropped samples out, grouped by window size for the host's heads.

* :func:`window_features`: embed only the windows' pixels of a batch (images with the same
  window sizes together), run the backbone on them with ``window_shapes`` (a ViTDet-style
  backbone partitions inside each window) and split each level back into one ``(C, h, w)``
  map per window. ``extra_tokens`` appends tokens the windows attend to (context tokens).
* :func:`windows_by_size`: every window of the batch with its cropped sample, bucketed by
  window size (the host's heads take a batch of equal-size small images).
* :func:`add_weighted`: sum the heads' losses of the size buckets, weighted by window count.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

from ...layers.winwin.windows import check_windows, embed_windows, window_grids

__all__ = ['window_features', 'windows_by_size', 'add_weighted']


def window_features(backbone, inputs: torch.Tensor, batch_windows: list, patch_size: int,
                    extra_tokens: Callable | None = None) -> list[list[list[torch.Tensor]]]:
    """Per sample, per window: the list over backbone levels of ``(C, h, w)`` maps.

    ``extra_tokens(images, tokens, pos, grid) -> (tokens, pos, (h, w))`` appends tokens that
    form one more grid (they are dropped from the outputs)."""
    p = patch_size
    grid = (-(-inputs.shape[2] // p), -(-inputs.shape[3] // p))
    groups = defaultdict(list)
    for i, wins in enumerate(batch_windows):
        check_windows(wins, grid)
        groups[tuple((h, w) for _, _, h, w in wins)].append(i)
    out: list = [None] * len(batch_windows)
    for idxs in groups.values():
        wins = [batch_windows[i] for i in idxs]
        tok, pos = embed_windows(backbone.patch_embed, inputs[idxs], wins, p)
        n = tok.shape[1]
        shapes = [(int(h), int(w)) for _, _, h, w in wins[0]]
        if extra_tokens is not None:
            tok, pos, extra_shape = extra_tokens(inputs[idxs], tok, pos, grid)
            shapes.append(extra_shape)
        levels = [lv[:, :n] for lv in backbone.forward_tokens(tok, pos, grid, window_shapes=shapes)]
        per_level = [window_grids(lv, wins[0]) for lv in levels]  # [level][window](b, C, h, w)
        for k, i in enumerate(idxs):
            out[i] = [[per_level[lv][j][k] for lv in range(len(levels))]
                      for j in range(len(wins[0]))]
    return out


def windows_by_size(samples: list, batch_windows: list, per_sample: list,
                    crop: Callable) -> dict:
    """``{(h, w): (features, cropped samples)}`` over every window of the batch;
    ``crop(sample, window)`` gives the window's sample."""
    buckets = defaultdict(lambda: ([], []))
    for sample, wins, feats in zip(samples, batch_windows, per_sample):
        for win, f in zip(wins, feats):
            bucket = buckets[(int(win[2]), int(win[3]))]
            bucket[0].append(f)
            bucket[1].append(crop(sample, win))
    return dict(buckets)


def add_weighted(total: dict, part: dict, weight: float) -> None:
    """``total[k] += weight * part[k]``; list-valued losses (mmdet's RPN, per level) per item."""
    for k, v in part.items():
        if isinstance(v, (list, tuple)):
            prev = total.get(k, [0] * len(v))
            total[k] = [a + b * weight for a, b in zip(prev, v)]
        else:
            total[k] = total.get(k, 0) + v * weight
