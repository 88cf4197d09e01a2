"""The window step every Win-Win model shares: window tokens in, per-window feature maps and
cropped samples out, grouped by window size for the host's heads.

* :func:`window_features`: embed only the windows' pixels of a batch (images with the same
  window sizes together), run the backbone on them with ``window_shapes`` (a ViTDet-style
  backbone partitions inside each window) and split each level back into one ``(C, h, w)``
  map per window. ``extra_tokens`` appends tokens the windows attend to (context tokens).
  The pixels come from whole images, or from canvases holding only the windows' pixels
  (``WinWinPackSegInputs(pixels='windows')`` / ``WinWinPackDetInputs(pixels='windows')``):
  each window is then read at its place in the canvas. Either way its tokens keep their
  full-image positions and the full grid handed to the backbone (RoPE of the
  grid-normalised families) is the sample's ``winwin_grid``: the grid of that image in the
  whole-image test forward, the same for both packings and independent of batch padding.
* :func:`canvas_batch`: whether a batch holds canvases, and their layout;
  :func:`is_canvas_batch`: the same, read from a batch before the data preprocessor.
* :func:`windows_by_size`: every window of the batch with its cropped sample, bucketed by
  window size (the host's heads take a batch of equal-size small images).
* :func:`add_weighted`: sum the heads' losses of the size buckets, weighted by window count.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

from ...layers.winwin.windows import (CANVAS_META_KEY, check_windows, embed_windows,
                                      window_grids)

__all__ = ['window_features', 'canvas_batch', 'is_canvas_batch', 'windows_by_size', 'add_weighted']


def canvas_batch(metas: list) -> tuple[list | None, list | None]:
    """``(batch_offsets, batch_grids)``: each window's ``(top, left)`` in the canvas when
    every sample was packed as a canvas (``winwin_canvas`` in its metainfo), else ``None``;
    and each sample's full token grid (``winwin_grid``, the grid of the whole-image test
    forward: :class:`~mmwinwin.datasets.winwin.WinWinWindows`), which canvases need and
    whole images use when every sample carries it (else ``None``: the batch's padded grid)."""
    packed = [CANVAS_META_KEY in m for m in metas]
    has_grid = all('winwin_grid' in m for m in metas)
    grids = [tuple(int(v) for v in m['winwin_grid']) for m in metas] if has_grid else None
    if not any(packed):
        return None, grids
    if not all(packed):
        raise ValueError("A batch mixes canvases of the windows' pixels (pixels='windows') and "
                         'whole images; pack every training image the same way (one '
                         "WinWinPackSegInputs / WinWinPackDetInputs setting per pipeline).")
    if not has_grid:
        raise KeyError("A canvas sample needs 'winwin_grid' (the full image's token grid) in "
                       'its metainfo: pack with WinWinPackSegInputs / WinWinPackDetInputs, '
                       'whose meta_keys carry it.')
    return [list(m[CANVAS_META_KEY]) for m in metas], grids


def is_canvas_batch(data) -> bool:
    """Whether a dataloader batch (``dict(inputs=..., data_samples=...)``, before the data
    preprocessor) holds canvases of the windows' pixels."""
    samples = data.get('data_samples') if isinstance(data, dict) else None
    return bool(samples) and any(CANVAS_META_KEY in getattr(s, 'metainfo', {})
                                 for s in samples)


def window_features(backbone, inputs: torch.Tensor, batch_windows: list, patch_size: int,
                    extra_tokens: Callable | None = None, batch_offsets: list | None = None,
                    batch_grids: list | None = None) -> list[list[list[torch.Tensor]]]:
    """Per sample, per window: the list over backbone levels of ``(C, h, w)`` maps.

    ``extra_tokens(images, tokens, pos, grid) -> (tokens, pos, (h, w))`` appends tokens that
    form one more grid (they are dropped from the outputs); it needs whole images.

    ``batch_offsets`` (:func:`canvas_batch`): ``inputs`` are canvases and each window is read
    at its offset there (default: whole images). ``batch_grids``: each sample's full token
    grid (``winwin_grid``), given to the backbone with its windows' tokens (samples are
    grouped by window sizes *and* grid); required for canvases. Without it (whole images
    only) the grid is the batch's padded input grid, which depends on the batch.
    ``extra_tokens`` then get each image cut (or zero-padded) to its full grid, so pooled
    context covers what it covers in the whole-image test forward."""
    p = patch_size
    canvas = batch_offsets is not None
    if canvas and (batch_grids is None or extra_tokens is not None):
        raise ValueError('window_features on canvases needs batch_grids (the full token '
                         'grids) and no extra_tokens (those pool the whole image).')
    grid = (-(-inputs.shape[2] // p), -(-inputs.shape[3] // p))
    groups = defaultdict(list)
    for i, wins in enumerate(batch_windows):
        g = tuple(batch_grids[i]) if batch_grids is not None else grid
        check_windows(wins, g)
        groups[(tuple((h, w) for _, _, h, w in wins), g)].append(i)
    out: list = [None] * len(batch_windows)
    for (_, g), idxs in groups.items():
        wins = [batch_windows[i] for i in idxs]
        offsets = [batch_offsets[i] for i in idxs] if canvas else None
        tok, pos = embed_windows(backbone.patch_embed, inputs[idxs], wins, p, offsets)
        n = tok.shape[1]
        shapes = [(int(h), int(w)) for _, _, h, w in wins[0]]
        if extra_tokens is not None:
            tok, pos, extra_shape = extra_tokens(_fit_to_grid(inputs[idxs], g, p), tok, pos, g)
            shapes.append(extra_shape)
        levels = [lv[:, :n] for lv in backbone.forward_tokens(tok, pos, g, window_shapes=shapes)]
        per_level = [window_grids(lv, wins[0]) for lv in levels]  # [level][window](b, C, h, w)
        for k, i in enumerate(idxs):
            out[i] = [[per_level[lv][j][k] for lv in range(len(levels))]
                      for j in range(len(wins[0]))]
    return out


def _fit_to_grid(images: torch.Tensor, grid: tuple, p: int) -> torch.Tensor:
    """``images`` cut, or zero-padded right / bottom, to ``grid`` patches of ``p`` pixels."""
    h, w = int(grid[0]) * p, int(grid[1]) * p
    images = images[..., :h, :w]
    if images.shape[-2] < h or images.shape[-1] < w:
        images = torch.nn.functional.pad(images, (0, w - images.shape[-1], 0, h - images.shape[-2]))
    return images


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
