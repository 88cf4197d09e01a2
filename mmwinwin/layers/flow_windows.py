"""Win-Win windows for image *pairs*: which tokens of frame 1 and frame 2 a step keeps.

Windows are given as top-left token coordinates ``boxes (B, N, 2)`` (y, x) of ``N`` square
``size x size`` windows per sample (sampled by :mod:`mmwinwin.layers.windows`).

Pairing policy (explicit, see :func:`pair_window_tokens`):

* ``margin=0`` (default, the paper's setting): frame 2 keeps exactly the same windows as
  frame 1 -- same token indices, same order.
* ``margin=m > 0``: frame 2 keeps each window enlarged by ``m`` tokens on every side
  (clipped to the image), so displacements up to ``m`` patches out of a window still find
  their match. Enlarged windows may overlap; frame 2 keeps the *union* (each token once),
  padded per batch with a key mask.

Frame-1 tokens are ordered window by window, row-major inside each window, so the
decoded tokens reshape to ``(B * N, C, size, size)`` grids for the convolutional head,
and :func:`crop_windows` cuts the flow target to the same ``size * patch`` pixel squares.
"""
from __future__ import annotations

import torch

__all__ = ['window_token_indices', 'pair_window_tokens', 'crop_windows', 'tokens_to_window_grids',
           'check_boxes']


def check_boxes(boxes: torch.Tensor, size: int, grid_size: tuple[int, int]) -> None:
    """Raise a clear ValueError if windows do not fit in the token grid."""
    if boxes.dim() != 3 or boxes.shape[-1] != 2:
        raise ValueError(f'boxes must be (B, N, 2) top-left (y, x) token coordinates, got '
                         f'{tuple(boxes.shape)}.')
    gh, gw = grid_size
    if size > min(gh, gw):
        raise ValueError(f'A {size}x{size}-token window does not fit in a {gh}x{gw} token grid; '
                         f'use smaller windows or larger training crops.')
    if (boxes < 0).any() or (boxes[..., 0] + size > gh).any() or (boxes[..., 1] + size > gw).any():
        raise ValueError(f'Some windows of size {size} fall outside the {gh}x{gw} token grid: '
                         f'{boxes.tolist()}.')


def window_token_indices(boxes: torch.Tensor, size: int, grid_w: int) -> torch.Tensor:
    """Flat row-major token indices ``(B, N * size * size)`` of the windows, window by window."""
    d = torch.arange(size, device=boxes.device)
    ys = boxes[..., 0, None, None] + d[:, None]  # (B, N, size, 1)
    xs = boxes[..., 1, None, None] + d[None, :]  # (B, N, 1, size)
    return (ys * grid_w + xs).reshape(boxes.shape[0], -1).long()


def pair_window_tokens(boxes: torch.Tensor, size: int, grid_size: tuple[int, int],
                       margin: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Token indices of frame 1 and frame 2 under the pairing policy (module docstring).

    Returns:
        ``idx1 (B, N1)``, ``idx2 (B, N2)`` and ``mask2`` -- ``None`` when every sample keeps
        the same number of frame-2 tokens, else a ``(B, N2)`` bool mask (True = real token;
        padded entries repeat index 0 and must be ignored as keys).
    """
    if margin < 0:
        raise ValueError(f'The frame-2 window margin must be >= 0 tokens, got {margin}.')
    check_boxes(boxes, size, grid_size)
    gh, gw = grid_size
    idx1 = window_token_indices(boxes, size, gw)
    if margin == 0:
        return idx1, idx1, None
    B = boxes.shape[0]
    keep = torch.zeros(B, gh, gw, dtype=torch.bool, device=boxes.device)
    for b in range(B):
        for y, x in boxes[b].tolist():
            keep[b, max(0, y - margin):y + size + margin, max(0, x - margin):x + size + margin] = True
    flat = keep.reshape(B, -1)
    counts = flat.sum(1)
    n2 = int(counts.max())
    idx2 = torch.zeros(B, n2, dtype=torch.long, device=boxes.device)
    mask2 = torch.zeros(B, n2, dtype=torch.bool, device=boxes.device)
    for b in range(B):
        sel = flat[b].nonzero().squeeze(1)
        idx2[b, :sel.numel()] = sel
        mask2[b, :sel.numel()] = True
    return idx1, idx2, (None if bool((counts == n2).all()) else mask2)


def tokens_to_window_grids(tokens: torch.Tensor, num_windows: int, size: int) -> torch.Tensor:
    """``(B, N * size * size, C)`` window tokens -> ``(B * N, C, size, size)`` grids."""
    B, L, C = tokens.shape
    if L != num_windows * size * size:
        raise ValueError(f'Expected {num_windows} windows of {size}x{size} tokens '
                         f'({num_windows * size * size}), got {L} tokens.')
    return tokens.reshape(B * num_windows, size, size, C).permute(0, 3, 1, 2).contiguous()


def crop_windows(dense: torch.Tensor, boxes: torch.Tensor, size: int,
                 patch_size: int) -> torch.Tensor:
    """Cut ``(B, C, H, W)`` pixel maps (flow target, valid mask) to the windows.

    Returns ``(B * N, C, size * patch_size, size * patch_size)``, in the same window
    order as :func:`window_token_indices`. Pixels beyond the map (padding) come back as 0.
    """
    B, C, H, W = dense.shape
    s = size * patch_size
    need_h = int(boxes[..., 0].max()) * patch_size + s
    need_w = int(boxes[..., 1].max()) * patch_size + s
    if need_h > H or need_w > W:
        dense = torch.nn.functional.pad(dense, (0, max(0, need_w - W), 0, max(0, need_h - H)))
    out = []
    for b in range(B):
        for y, x in boxes[b].tolist():
            y0, x0 = y * patch_size, x * patch_size
            out.append(dense[b, :, y0:y0 + s, x0:x0 + s])
    return torch.stack(out)
