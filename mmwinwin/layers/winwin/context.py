"""Context tokens: a pooled summary of the whole image beside the Win-Win windows.

Win-Win keeps N windows of tokens; a cue that lies outside every window (a scene sign, a
distant object) never reaches the loss of that step. Context tokens add a coarse view of the
whole image: the patch embedding of the full image (a cheap convolution) average-pooled into
``ceil(H / pool) x ceil(W / pool)`` near-equal cells of about ``pool x pool`` tokens (adaptive
average pooling: cell ``i`` spans rows ``floor(i H / h)`` to ``ceil((i + 1) H / h) - 1``, the
same for columns, so border cells may overlap by a token), each pooled token placed at the
mean (y, x) position of the tokens it pools, so RoPE relates it to the window tokens by its
true offset.

The same tokens are appended at test time, so the model sees at inference what it was
trained with; only the patch tokens leave the backbone (the context outputs are dropped).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ['context_grid', 'pool_context_tokens']


def context_grid(grid_size: Sequence[int], pool: int) -> tuple[int, int]:
    """Rows and columns of context tokens for a token grid and a pool side."""
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f'context pool must be a positive int (tokens per side of a pooled '
                         f'cell), got {pool!r}.')
    return math.ceil(int(grid_size[0]) / pool), math.ceil(int(grid_size[1]) / pool)


def pool_context_tokens(tokens: torch.Tensor, grid_size: Sequence[int],
                        pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool a whole image's patch tokens into context tokens.

    Args:
        tokens: ``(B, H*W, C)`` patch tokens of the whole image, row-major.
        grid_size: ``(H, W)`` token grid.
        pool: about the side of a pooled cell in tokens (``ceil(H / pool)`` rows of
            ``adaptive_avg_pool2d`` cells, the same for columns).

    Returns:
        ``ctx (B, M, C)`` and their positions ``pos (M, 2)``: the mean (y, x) of the tokens
        each context token pools.
    """
    H, W = int(grid_size[0]), int(grid_size[1])
    if tokens.dim() != 3 or tokens.shape[1] != H * W:
        raise ValueError(f'Expected (B, {H * W}, C) tokens for a {H}x{W} grid, got '
                         f'{tuple(tokens.shape)}.')
    out = context_grid((H, W), pool)
    B, _, C = tokens.shape
    grid = tokens.transpose(1, 2).reshape(B, C, H, W)
    ctx = F.adaptive_avg_pool2d(grid, out).flatten(2).transpose(1, 2)
    ys = torch.arange(H, device=tokens.device, dtype=tokens.dtype)
    xs = torch.arange(W, device=tokens.device, dtype=tokens.dtype)
    coords = torch.stack(torch.meshgrid(ys, xs, indexing='ij'))[None]  # (1, 2, H, W)
    pos = F.adaptive_avg_pool2d(coords, out).flatten(2)[0].transpose(0, 1)
    return ctx, pos
