"""Token pooling: the "sanity floor" beside Expedite and token merging (pure PyTorch).

After block ``alpha`` (counted from 1, as Expedite's) the patch-token grid is
average-pooled by ``stride = (sy, sx)`` (kernel = stride, no overlap); the grid is
zero-padded on the bottom / right to whole cells and each cell is the mean of the tokens
INSIDE the grid (the padding is not counted: ``avg_pool2d(..., ceil_mode=True)``). RoPE
positions are pooled alike (the mean ``(y, x)`` of the cell's tokens). Every output after
alpha is upsampled back to the full ``(h, w)`` grid bilinearly (``align_corners=False``).
No proportional attention: a pooled token is one token. Prefix tokens are untouched.
``alpha == num_layers`` pools nothing: exactly the plain model.

In a ViTDet-style windowed ViT (:class:`PartitionedTokenPoolingPolicy`) the attention
partitions shrink with the grid: after pooling by a square ``stride`` s, partitioned
blocks attend inside partitions of ``ceil(partition_size / s)`` pooled tokens (ViTDet's
14 -> 7 for s = 2; padded and masked as ViTDet pads), global blocks over the pooled grid.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..merging.policy import _check_alpha, _pair
from ..settings import check_settings_dict
from ..vit.block_loop import BlockLoopState, TokenPolicy, run_blocks
from ..vit.vitdet import PartitionedAttentionPolicy

__all__ = ['TokenPoolingSettings', 'TokenPoolingPolicy', 'pool_grid', 'upsample_grid',
           'pooled_forward_tokens', 'PartitionedTokenPoolingPolicy',
           'pooled_partitioned_forward']


def pool_grid(x: torch.Tensor, hw: tuple[int, int], stride: tuple[int, int]
              ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Average ``x`` (B, h*w, C), a row-major ``hw`` grid, over ``stride`` cells; border
    cells average the tokens inside the grid. Returns ``((B, h'*w', C), (h', w'))``."""
    B, N, C = x.shape
    h, w = hw
    sy, sx = stride
    if N != h * w:
        raise ValueError(f'pool_grid got {N} tokens for a {h}x{w} grid.')
    ph, pw = -(-h // sy), -(-w // sx)
    g = x.transpose(1, 2).reshape(B, C, h, w)
    g = F.pad(g, (0, pw * sx - w, 0, ph * sy - h))
    sums = g.reshape(B, C, ph, sy, pw, sx).sum(dim=(3, 5))
    ones = F.pad(x.new_ones(1, 1, h, w), (0, pw * sx - w, 0, ph * sy - h))
    counts = ones.reshape(1, 1, ph, sy, pw, sx).sum(dim=(3, 5))
    return (sums / counts).flatten(2).transpose(1, 2), (ph, pw)


def upsample_grid(x: torch.Tensor, hw: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (``align_corners=False``) upsampling of ``x`` (B, h*w, C) on grid ``hw``
    to ``size``: ``(B, H*W, C)``."""
    B, _, C = x.shape
    g = x.transpose(1, 2).reshape(B, C, *hw)
    g = F.interpolate(g, size=tuple(size), mode='bilinear', align_corners=False)
    return g.flatten(2).transpose(1, 2)


@dataclass
class TokenPoolingSettings:
    """Average-pool the token grid after block ``alpha`` (counted from 1) by ``stride``
    (an int or ``(sy, sx)``); outputs after alpha are upsampled bilinearly."""
    alpha: int = 1
    stride: int | tuple[int, int] = (2, 2)

    @classmethod
    def build(cls, cfg: 'TokenPoolingSettings | dict | None') -> 'TokenPoolingSettings | None':
        if cfg is None or isinstance(cfg, TokenPoolingSettings):
            return cfg
        check_settings_dict(cfg, cls.__dataclass_fields__, 'token_pooling')
        return cls(**cfg)

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int) or self.alpha < 1:
            raise ValueError(f'token_pooling alpha must be an int >= 1 (blocks 1..alpha see '
                             f'all tokens), got {self.alpha!r}.')
        self.stride = _pair(self.stride, 'token_pooling stride')

    def check_alpha(self, num_layers: int) -> None:
        """Raise unless ``1 <= alpha <= num_layers``."""
        _check_alpha(self.alpha, num_layers, 'token_pooling', 'the token grid is pooled')

    def to_dict(self) -> dict:
        return asdict(self)


class TokenPoolingPolicy(TokenPolicy):
    """Token policy of token pooling (see the module docstring). After the forward,
    ``pooled_grid`` is the pooled ``(h', w')`` (``None`` if nothing was pooled)."""

    def __init__(self, settings: TokenPoolingSettings, grid_size: tuple[int, int]) -> None:
        self.settings = settings
        self.grid_size = tuple(grid_size)
        self.pooled_grid: tuple[int, int] | None = None

    def after_block(self, index: int, state: BlockLoopState) -> None:
        s = self.settings
        vit = state.vit
        if index != s.alpha - 1 or s.alpha >= vit.num_layers:
            return
        p = vit.num_prefix_tokens
        x = state.x
        patches, self.pooled_grid = pool_grid(x[:, p:], self.grid_size, s.stride)
        pos = state.pos
        pos = pos if pos.is_floating_point() else pos.float()
        pos = pos[None] if pos.dim() == 2 else pos
        state.pos = pool_grid(pos, self.grid_size, s.stride)[0]
        if state.pos.shape[0] == 1:
            state.pos = state.pos[0]
        state.x = torch.cat([x[:, :p], patches], dim=1)

    def output(self, index: int, state: BlockLoopState) -> torch.Tensor:
        out = state.vit.output_tokens(index, state.x)
        if self.pooled_grid is None:
            return out
        return upsample_grid(out, self.pooled_grid, self.grid_size)


def pooled_forward_tokens(vit, tokens: torch.Tensor, pos: torch.Tensor,
                          grid_size: tuple[int, int], settings: TokenPoolingSettings
                          ) -> list[torch.Tensor]:
    """Token-pooling ``forward_tokens`` of a :class:`~mmwinwin.layers.RoPEVisionTransformer`
    over a full ``grid_size`` grid; outputs ``(B, h*w, C)`` for ``out_indices``."""
    settings.check_alpha(vit.num_layers)
    pos = pos.to(device=tokens.device)
    x = vit.prepare_tokens(tokens, pos, grid_size)
    if getattr(vit, 'rope_type', 'axial') != 'axial':
        pos = vit.rope_positions(pos, grid_size)  # affine: cell means stay exact
    return run_blocks(vit, x, pos, TokenPoolingPolicy(settings, grid_size))


class PartitionedTokenPoolingPolicy(TokenPoolingPolicy):
    """Token pooling in a ViTDet-style ViT (module docstring): ViTDet's policy up to block
    alpha, then partitioned blocks inside partitions of ``ceil(partition_size / s)``
    pooled tokens, global blocks over the pooled grid (whole image grid only)."""

    def __init__(self, settings: TokenPoolingSettings, hw: tuple[int, int]) -> None:
        super().__init__(settings, hw)
        sy, sx = settings.stride
        if sy != sx:
            raise ValueError(f'token_pooling in a ViTDet-style ViT needs a square stride '
                             f'(the attention partitions are square), got {settings.stride}; '
                             f'use stride={max(sy, sx)}.')
        self._vitdet = PartitionedAttentionPolicy(hw)

    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        if self.pooled_grid is None:
            return self._vitdet.block(index, state)
        if vit.is_global(index):
            return vit.run_block(index, state.x, state.pos)
        ps = -(-vit.partition_size // self.settings.stride[0])
        return vit.run_windowed_block(index, state.x, state.pos, self.pooled_grid, ps)


def pooled_partitioned_forward(vit, tokens: torch.Tensor, pos: torch.Tensor,
                               hw: tuple[int, int], settings: TokenPoolingSettings
                               ) -> list[torch.Tensor]:
    """Token-pooling ``forward_grid`` of a ViTDet-style ViT on a whole ``(B, H*W, C)``
    token grid; returns the ``out_indices`` outputs as ``(B, H*W, C)``."""
    settings.check_alpha(vit.num_layers)
    pos = pos.to(device=tokens.device)
    x = vit.prepare_tokens(tokens, pos, hw)
    if vit.rope_type != 'axial':
        pos = vit.rope_positions(pos, hw)
    return run_blocks(vit, x, pos, PartitionedTokenPoolingPolicy(settings, tuple(hw)))
