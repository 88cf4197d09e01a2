"""Window partition / unpartition of token grids, for ViTDet-style windowed attention.

ViTDet runs most blocks of a plain ViT inside non-overlapping square windows of the
token grid (cost linear in the image area) and a few blocks globally. A grid that is
not a multiple of the window is zero-padded at the right and bottom; the padded tokens
are masked out as keys, so the valid tokens' outputs do not depend on the padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['partition_tokens', 'unpartition_tokens', 'partition_key_mask']


def _check_partition(partition_size: int) -> None:
    if not isinstance(partition_size, int) or partition_size < 1:
        raise ValueError(f'partition_size must be a positive int, got {partition_size!r}.')


def partition_tokens(x: torch.Tensor, partition_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Split a ``(B, H, W, C)`` grid into ``(B * nWh * nWw, ws * ws, C)`` windows.

    The grid is zero-padded (right, bottom) to multiples of ``partition_size``; returns the
    windows and the padded grid size ``(Hp, Wp)`` (needed to undo the split).
    """
    _check_partition(partition_size)
    if x.dim() != 4:
        raise ValueError(f'partition_tokens expects a (B, H, W, C) grid, got {tuple(x.shape)}.')
    B, H, W, C = x.shape
    ws = partition_size
    pad_h, pad_w = (-H) % ws, (-W) % ws
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, C), (Hp, Wp)


def unpartition_tokens(windows: torch.Tensor, partition_size: int, padded_hw: tuple[int, int],
                       hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`partition_tokens`: windows back to a ``(B, H, W, C)`` grid,
    padding removed."""
    _check_partition(partition_size)
    ws = partition_size
    Hp, Wp = padded_hw
    H, W = hw
    n_win = (Hp // ws) * (Wp // ws)
    if windows.dim() != 3 or windows.shape[1] != ws * ws or windows.shape[0] % n_win:
        raise ValueError(f'Got windows of shape {tuple(windows.shape)}, expected '
                         f'(B * {n_win}, {ws * ws}, C) for a padded grid {padded_hw}.')
    B = windows.shape[0] // n_win
    x = windows.view(B, Hp // ws, Wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, Hp, Wp, -1)[:, :H, :W].contiguous()


def partition_key_mask(hw: tuple[int, int], partition_size: int, batch_size: int = 1,
                    device: torch.device | None = None) -> torch.Tensor | None:
    """Boolean attention mask ``(B * nW, 1, 1, ws * ws)`` that is False for padded keys,
    or ``None`` when the grid needs no padding (so the fast unmasked path is kept)."""
    _check_partition(partition_size)
    H, W = hw
    if H % partition_size == 0 and W % partition_size == 0:
        return None
    valid = torch.ones(1, H, W, 1, device=device)
    win, _ = partition_tokens(valid, partition_size)  # (nW, ws*ws, 1)
    mask = win[..., 0].bool()[:, None, None, :]
    return mask.repeat(batch_size, 1, 1, 1)
