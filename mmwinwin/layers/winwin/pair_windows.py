"""Win-Win windows for image *pairs*: which tokens of frame 1 and frame 2 a step keeps.

Windows follow :mod:`mmwinwin.layers.winwin.windows` (sampled there by :func:`sample_windows`):
per sample a list of square ``(top, left, size, size)`` windows in tokens. For a batch
every sample has the same number of windows of the same size (positions differ).

Pairing policy (explicit, see :func:`pair_window_tokens`):

* ``margin=0`` (default, the paper's setting): frame 2 keeps exactly the same windows as
  frame 1 -- same token indices, same order.
* ``margin=m > 0``: frame 2 keeps each window enlarged by ``m`` tokens on every side
  (clipped to the token grid), so displacements up to ``m`` patches out of a window
  still find their match. Enlarged windows may overlap; frame 2 keeps the *union*
  (each token once, row-major), padded per batch with a key mask.

Frame-1 tokens are ordered window by window, row-major inside each window
(:func:`window_token_index`), so decoded tokens reshape to ``(B * N, C, s, s)`` grids
for the convolutional head, and :func:`crop_pair_windows` cuts the flow target and its
valid mask to the same ``s * patch`` pixel squares in the same order.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .windows import check_windows, crop_windows, window_token_index, window_token_mask

__all__ = ['check_batch_windows', 'pair_window_tokens', 'tokens_to_window_grids',
           'crop_pair_windows']


def check_batch_windows(batch_windows: Sequence[Sequence[Sequence[int]]],
                        grid_size: Sequence[int]) -> tuple[int, int]:
    """Validate a batch of window lists; return ``(num_windows, size)``."""
    if len(batch_windows) == 0:
        raise ValueError('Got no window lists (one list of windows per sample is needed).')
    shapes = [tuple((int(h), int(w)) for _, _, h, w in wins) for wins in batch_windows]
    if any(s != shapes[0] for s in shapes) or len(shapes[0]) == 0:
        raise ValueError(f'Every sample of a batch needs the same number and sizes of windows, '
                         f'got {shapes}.')
    if any(h != w for h, w in shapes[0]) or len(set(shapes[0])) != 1:
        raise ValueError(f'Flow windows must be square and of one size per batch, got '
                         f'{shapes[0]}.')
    for wins in batch_windows:
        check_windows(wins, grid_size)
    return len(shapes[0]), shapes[0][0][0]


def pair_window_tokens(batch_windows: Sequence[Sequence[Sequence[int]]],
                       grid_size: Sequence[int], margin: int = 0,
                       device: torch.device | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Token indices of frame 1 and frame 2 under the pairing policy (module docstring).

    Returns:
        ``idx1 (B, N1)``, ``idx2 (B, N2)`` and ``mask2`` -- ``None`` when every sample keeps
        the same number of frame-2 tokens, else a ``(B, N2)`` bool mask (True = real token;
        padded entries repeat index 0 and must be ignored as keys).
    """
    if margin < 0:
        raise ValueError(f'The frame-2 window margin must be >= 0 tokens, got {margin}.')
    check_batch_windows(batch_windows, grid_size)
    gh, gw = int(grid_size[0]), int(grid_size[1])
    idx1 = torch.stack([window_token_index(w, grid_size, device) for w in batch_windows])
    if margin == 0:
        return idx1, idx1, None
    # the frame-2 selection is built on the host from the window integers (no device
    # ``nonzero`` / ``all`` to wait for) and sent to the device once
    sel = []
    for wins in batch_windows:
        grown = []
        for t, l, h, w in wins:
            t0, l0 = max(0, t - margin), max(0, l - margin)
            grown.append((t0, l0, min(gh, t + h + margin) - t0, min(gw, l + w + margin) - l0))
        sel.append(window_token_mask(grown, grid_size).reshape(-1).nonzero().squeeze(1))
    counts = [s.numel() for s in sel]
    n2 = max(counts)
    idx2 = torch.zeros(len(sel), n2, dtype=torch.long)
    mask2 = torch.zeros(len(sel), n2, dtype=torch.bool)
    for b, s in enumerate(sel):
        idx2[b, :s.numel()] = s
        mask2[b, :s.numel()] = True
    idx2 = idx2.to(device=device, non_blocking=True)
    if min(counts) == n2:
        return idx1, idx2, None
    return idx1, idx2, mask2.to(device=device, non_blocking=True)


def tokens_to_window_grids(tokens: torch.Tensor, num_windows: int, size: int) -> torch.Tensor:
    """``(B, N * size * size, C)`` window tokens -> ``(B * N, C, size, size)`` grids."""
    B, L, C = tokens.shape
    if L != num_windows * size * size:
        raise ValueError(f'Expected {num_windows} windows of {size}x{size} tokens '
                         f'({num_windows * size * size}), got {L} tokens.')
    return tokens.reshape(B * num_windows, size, size, C).permute(0, 3, 1, 2).contiguous()


def crop_pair_windows(dense: torch.Tensor, batch_windows: Sequence[Sequence[Sequence[int]]],
                      patch_size: int) -> torch.Tensor:
    """Cut ``(B, C, H, W)`` pixel maps (flow target, valid mask) to the windows:
    ``(B * N, C, s * patch, s * patch)`` in the order of the model's window output."""
    if len(batch_windows) != dense.shape[0]:
        raise ValueError(f'Got {len(batch_windows)} window lists for {dense.shape[0]} maps.')
    return torch.cat([torch.stack(crop_windows(dense[b], wins, patch_size))
                      for b, wins in enumerate(batch_windows)])
