"""ViTDet-style plain ViT: windowed attention in most blocks, global attention in a few.

Built on :class:`RoPEVisionTransformer` (same parameters, same checkpoint keys): only
the order in which tokens meet in attention changes. Every token keeps its (y, x)
position in the whole image, so RoPE sees true offsets inside each window and in the
global blocks. The output is a single-scale (stride = patch size) feature map; a
simple-FPN neck turns it into a pyramid.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .block_loop import BlockLoopState, TokenPolicy, run_blocks
from .rope import grid_positions
from .vision_transformer import RoPEVisionTransformer
from .partition import partition_key_mask, partition_tokens, unpartition_tokens

__all__ = ['PartitionedAttentionPolicy', 'ViTDetVisionTransformer']


class PartitionedAttentionPolicy(TokenPolicy):
    """Token policy of ViTDet: blocks in ``vit.global_indices`` attend over the whole
    ``hw`` token grid, the others inside attention partitions of ``vit.window_size``
    (``vit.run_windowed_block``)."""

    def __init__(self, hw: tuple[int, int]) -> None:
        self.hw = tuple(hw)

    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        if vit.is_global(index):
            return vit.run_block(index, state.x, state.pos)
        return vit.run_windowed_block(index, state.x, state.pos, self.hw)


class ViTDetVisionTransformer(RoPEVisionTransformer):
    """RoPE ViT with window attention (ViTDet).

    Args:
        window_size: side of the square attention windows, in tokens (ViTDet: 14).
        global_indices: blocks that attend globally (ViTDet ViT-B: 2, 5, 8, 11).
            Negative entries count from the end. ``None`` picks the last block of each
            quarter of the network.
        **kwargs: every argument of :class:`RoPEVisionTransformer` (a cls token is not
            supported: windows have no place for it).
    """

    def __init__(self, *args, window_size: int = 14,
                 global_indices: Sequence[int] | None = None, **kwargs) -> None:
        if kwargs.get('with_cls_token'):
            raise ValueError('ViTDetVisionTransformer does not support with_cls_token=True: '
                             'window attention has no place for a cls token.')
        super().__init__(*args, **kwargs)
        if not isinstance(window_size, int) or window_size < 1:
            raise ValueError(f'window_size must be a positive int, got {window_size!r}.')
        self.window_size = window_size
        n = self.num_layers
        if global_indices is None:
            global_indices = sorted({(n * (q + 1)) // 4 - 1 for q in range(4)} - {-1})
        self.global_indices = tuple(sorted(self._normalize_out_indices(list(global_indices), n)))

    def is_global(self, index: int) -> bool:
        return index in self.global_indices

    def run_windowed_block(self, index: int, x: torch.Tensor, pos: torch.Tensor,
                           hw: tuple[int, int], window_size: int | None = None) -> torch.Tensor:
        """Run block ``index`` inside windows of the ``(B, H*W, C)`` grid ``x``."""
        ws = window_size or self.window_size
        B, N, C = x.shape
        H, W = hw
        grid = x.view(B, H, W, C)
        windows, padded = partition_tokens(grid, ws)
        pos_grid = pos.reshape(-1, H, W, 2)
        pos_win, _ = partition_tokens(pos_grid.expand(B, -1, -1, -1), ws)
        mask = partition_key_mask(hw, ws, B, x.device)
        out = self.run_block(index, windows, pos_win, mask)
        return unpartition_tokens(out, ws, padded, hw).view(B, N, C)

    def forward_grid(self, tokens: torch.Tensor, pos: torch.Tensor,
                     hw: tuple[int, int]) -> list[torch.Tensor]:
        """Run all blocks on a whole ``(B, H*W, C)`` token grid; returns out_indices tokens."""
        x = self.prepare_tokens(tokens, pos, hw)
        if self.rope_type != 'axial':  # the family's RoPE coordinates (normalised by hw)
            pos = self.rope_positions(pos, hw)
        return run_blocks(self, x, pos, PartitionedAttentionPolicy(hw))

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` feature maps (stride = patch size) for each of ``out_indices``."""
        tokens, hw = self.patch_embed(img)
        pos = grid_positions(*hw, device=tokens.device)
        outs = self.forward_grid(tokens, pos, hw)
        h, w = hw
        return [o.transpose(1, 2).reshape(o.shape[0], -1, h, w) for o in outs]
