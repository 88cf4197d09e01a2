"""Tiled flow inference, the way CroCo-Flow runs frames larger than its training crops.

Win-Win's point is that its model needs none of this: it runs whole full-HD frames in one
pass. Tiling is here as the baseline the paper compares against (~305 ms vs 3266 ms at
1080p) and as a test mode for models trained on small crops without RoPE-style
generalisation. Tiles of the training-crop size are spaced evenly over each axis, from the
first pixel to the last, with at least ``overlap`` of a tile shared between neighbours;
each tile pair goes through the model and the predictions are averaged with per-pixel
weights (uniform, or a tent that trusts tile centres more than tile borders).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ['tile_offsets', 'tile_weight', 'tiled_flow']


def tile_offsets(total: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, total)``, evenly spaced.

    The count is the smallest that keeps consecutive tiles at least ``overlap * tile``
    apart from disjoint: ``1 + ceil((total - tile) / ((1 - overlap) * tile))``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f'tile overlap must be in [0, 1), got {overlap}.')
    if tile <= 0 or tile > total:
        raise ValueError(f'tile size {tile} must be in [1, {total}] (the frame side).')
    n = 1 + math.ceil((total - tile) / ((1 - overlap) * tile))
    if n == 1:
        return [0]
    return [round(i * (total - tile) / (n - 1)) for i in range(n)]


def tile_weight(height: int, width: int, kind: str = 'uniform',
                device: torch.device | None = None) -> torch.Tensor:
    """``(height, width)`` blending weight of one tile: ``'uniform'`` or ``'tent'``
    (product of 1D triangles peaking at the centre, never zero)."""
    if kind == 'uniform':
        return torch.ones(height, width, device=device)
    if kind == 'tent':
        def tri(n: int) -> torch.Tensor:
            x = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
            return 1.0 - (2 * x - 1).abs() + 1.0 / n
        return tri(height)[:, None] * tri(width)[None, :]
    raise ValueError(f"tile weight must be 'uniform' or 'tent', got {kind!r}.")


def tiled_flow(flow_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               img1: torch.Tensor, img2: torch.Tensor, tile_size: tuple[int, int],
               overlap: float = 0.5, weight: str = 'uniform') -> torch.Tensor:
    """Run ``flow_fn`` on aligned tiles of both frames and blend the tile flows.

    Args:
        flow_fn: ``(img1_tile, img2_tile) -> (B, 2, th, tw)`` flow of the tile.
        img1, img2: ``(B, 3, H, W)`` frames.
        tile_size: ``(th, tw)`` pixels; a side larger than the frame is clipped to it.
        overlap: minimum shared fraction of a tile between neighbours, in ``[0, 1)``.
        weight: ``'uniform'`` or ``'tent'`` blending.

    Returns:
        ``(B, 2, H, W)`` flow in pixels (flow is translation-invariant, so tile flows need
        no offset correction).
    """
    if img1.shape != img2.shape or img1.dim() != 4:
        raise ValueError(f'tiled_flow needs two (B, 3, H, W) frames of one shape, got '
                         f'{tuple(img1.shape)} and {tuple(img2.shape)}.')
    B, _, H, W = img1.shape
    th, tw = min(int(tile_size[0]), H), min(int(tile_size[1]), W)
    w = tile_weight(th, tw, weight, img1.device)
    acc = img1.new_zeros(B, 2, H, W, dtype=torch.float32)
    norm = img1.new_zeros(H, W, dtype=torch.float32)
    for y in tile_offsets(H, th, overlap):
        for x in tile_offsets(W, tw, overlap):
            sl = (..., slice(y, y + th), slice(x, x + tw))
            f = flow_fn(img1[sl], img2[sl])
            if f.shape != (B, 2, th, tw):
                raise ValueError(f'flow_fn returned {tuple(f.shape)} for a {th}x{tw} tile; '
                                 f'expected {(B, 2, th, tw)}.')
            acc[sl] += f.float() * w
            norm[sl] += w
    return acc / norm
