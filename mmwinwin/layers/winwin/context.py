"""Context tokens: a pooled summary of the whole image beside the Win-Win windows.

Win-Win keeps N windows of tokens; a cue that lies outside every window (a scene sign, a
distant object) never reaches the loss of that step. Context tokens add a coarse view of the
whole image: the patch embedding of the full image (a cheap convolution) pooled into a grid of
near-equal cells (adaptive pooling: cell ``i`` of ``h`` spans rows ``floor(i H / h)`` to
``ceil((i + 1) H / h) - 1``, the same for columns, so border cells may overlap by a token),
each pooled token placed at the mean (y, x) position of the tokens it pools, so RoPE relates
it to the window tokens by its true offset.

Two ways to size the grid (:class:`ContextTokens`):

* ``pool=P``: cells of about ``P x P`` tokens, ``ceil(H / P) x ceil(W / P)`` of them; the
  count grows with the image (ViT-B/16 at 1280x720, 45x80 tokens: 920 at ``pool=2``);
* ``grid=(h, w)``: a fixed ``h x w`` cells at any image size (at most the token grid), so the
  cost of the context is fixed; cells grow with the image.

and two reductions (``reduce``): ``'mean'`` (default: the average of the cell's token
embeddings) or ``'max'`` (per channel, the largest; a small distinct cue, one token in a cell
of many, stays as strong as it is, where the mean divides it by the cell's size).

The same tokens are appended at test time, so the model sees at inference what it was
trained with; only the patch tokens leave the backbone (the context outputs are dropped).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..settings import check_settings_keys

__all__ = ['ContextTokens', 'context_grid', 'pool_context_tokens']

_REDUCE = ('mean', 'max')


def context_grid(grid_size: Sequence[int], pool: int) -> tuple[int, int]:
    """Rows and columns of context tokens for a token grid and a pool side."""
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f'context pool must be a positive int (tokens per side of a pooled '
                         f'cell), got {pool!r}.')
    return math.ceil(int(grid_size[0]) / pool), math.ceil(int(grid_size[1]) / pool)


def pool_context_tokens(tokens: torch.Tensor, grid_size: Sequence[int],
                        pool: int | None = None, *, grid: Sequence[int] | None = None,
                        reduce: str = 'mean') -> tuple[torch.Tensor, torch.Tensor]:
    """Pool a whole image's patch tokens into context tokens.

    Args:
        tokens: ``(B, H*W, C)`` patch tokens of the whole image, row-major.
        grid_size: ``(H, W)`` token grid.
        pool: about the side of a pooled cell in tokens (``ceil(H / pool)`` rows of
            adaptive cells, the same for columns); or
        grid: the cells' ``(rows, cols)``, each at most the token grid's (one of the two).
        reduce: ``'mean'`` or ``'max'`` over each cell's tokens, per channel.

    Returns:
        ``ctx (B, M, C)`` and their positions ``pos (M, 2)``: the mean (y, x) of the tokens
        each context token pools.
    """
    return ContextTokens(pool=pool, grid=grid, reduce=reduce)(tokens, grid_size)


@dataclasses.dataclass(frozen=True)
class ContextTokens:
    """The setting ``context_tokens=dict(...)`` of the Win-Win segmentors: exactly one of
    ``pool`` (cell side in tokens) or ``grid`` (``(rows, cols)`` of cells), and ``reduce``
    (``'mean'`` or ``'max'``); see the module docstring."""

    pool: int | None = None
    grid: tuple[int, int] | None = None
    reduce: str = 'mean'

    def __post_init__(self) -> None:
        if (self.pool is None) == (self.grid is None):
            raise ValueError('context_tokens needs exactly one of pool=P (cells of about P x P '
                             'tokens) or grid=(rows, cols) (a fixed number of cells), got '
                             f'pool={self.pool!r}, grid={self.grid!r}.')
        if self.pool is not None:
            context_grid((1, 1), self.pool)  # validates pool
        else:
            g = self.grid
            if not (isinstance(g, (tuple, list)) and len(g) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in g)):
                raise ValueError(f'context_tokens grid must be two positive ints (rows, cols) '
                                 f'of context cells, such as grid=(3, 6); got {g!r}.')
            object.__setattr__(self, 'grid', (int(g[0]), int(g[1])))
        if self.reduce not in _REDUCE:
            raise ValueError(f"context_tokens reduce must be 'mean' (average of a cell's "
                             f"tokens) or 'max' (per channel), got {self.reduce!r}.")

    @classmethod
    def build(cls, setting: dict | None) -> 'ContextTokens | None':
        """The spec of a ``context_tokens`` setting (``None``: no context tokens); a dict
        without ``pool`` or ``grid`` keeps the historical default ``pool=4``."""
        if setting is None:
            return None
        if not isinstance(setting, dict):
            raise TypeError(f'context_tokens must be a dict such as dict(pool=4) or '
                            f'dict(grid=(3, 6)), or None; got {setting!r}.')
        check_settings_keys(setting, ('pool', 'grid', 'reduce'), 'context_tokens')
        kw = dict(setting)
        if 'pool' not in kw and 'grid' not in kw:
            kw['pool'] = 4
        return cls(**kw)

    def shape(self, grid_size: Sequence[int]) -> tuple[int, int]:
        """Rows and columns of context tokens for a ``(H, W)`` token grid."""
        if self.pool is not None:
            return context_grid(grid_size, self.pool)
        return min(self.grid[0], int(grid_size[0])), min(self.grid[1], int(grid_size[1]))

    def __call__(self, tokens: torch.Tensor, grid_size: Sequence[int]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context tokens ``(B, M, C)`` of ``(B, H*W, C)`` patch tokens on a ``(H, W)``
        grid, and their positions ``(M, 2)`` (:func:`pool_context_tokens`)."""
        H, W = int(grid_size[0]), int(grid_size[1])
        if tokens.dim() != 3 or tokens.shape[1] != H * W:
            raise ValueError(f'Expected (B, {H * W}, C) tokens for a {H}x{W} grid, got '
                             f'{tuple(tokens.shape)}.')
        out = self.shape((H, W))
        B, _, C = tokens.shape
        cells = tokens.transpose(1, 2).reshape(B, C, H, W)
        pooled = F.adaptive_max_pool2d if self.reduce == 'max' else F.adaptive_avg_pool2d
        ctx = pooled(cells, out).flatten(2).transpose(1, 2)
        ys = torch.arange(H, device=tokens.device, dtype=tokens.dtype)
        xs = torch.arange(W, device=tokens.device, dtype=tokens.dtype)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing='ij'))[None]  # (1, 2, H, W)
        pos = F.adaptive_avg_pool2d(coords, out).flatten(2)[0].transpose(0, 1)
        return ctx, pos

    def __str__(self) -> str:
        parts = [f'pool={self.pool}' if self.pool is not None else f'grid={self.grid}']
        if self.reduce != 'mean':
            parts.append(f'reduce={self.reduce!r}')
        return f'dict({", ".join(parts)})'
