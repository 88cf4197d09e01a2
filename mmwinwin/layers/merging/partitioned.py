"""Token merging in a ViTDet-style windowed ViT: merges per attention partition.

Up to block ``alpha`` the ViTDet policy runs (partitioned / global attention). At the
first merge the token grid is split into its attention partitions (zero-padded right /
bottom as ViTDet pads, :func:`~mmwinwin.layers.vit.partition.partition_tokens`); each
partition then merges on its own, ``r`` tokens before every block after alpha, so all
partitions keep the same length and the loop carries ``(B * partitions, n, C)``.
Destinations are one per ``stride`` cell of the partition's own ``ps x ps`` grid.
Padding tokens are tokens of size 0: their attention bias ``log 0 = -inf`` masks them
as keys (as ViTDet's key mask does), they weigh nothing in a merge, and a real token
merged into a padding destination simply moves there. Partitioned blocks attend inside
a partition, global blocks over all partitions of an image, both with the
``log(size)`` bias (without ``proportional_attention`` only the padding mask). Outputs
after alpha are unmerged per partition and put back on the full ``(H, W)`` grid.
"""
from __future__ import annotations

import torch

from ..vit.block_loop import BlockLoopState, run_blocks
from ..vit.partition import partition_tokens, unpartition_tokens
from ..vit.vitdet import PartitionedAttentionPolicy
from .policy import TokenMergingPolicy, TokenMergingSettings

__all__ = ['PartitionedTokenMergingPolicy', 'merged_partitioned_forward']


class PartitionedTokenMergingPolicy(TokenMergingPolicy):
    """Token merging per attention partition of a ViTDet-style ViT (module docstring), on
    the whole image's ``hw`` token grid (not Win-Win's window batches)."""

    def __init__(self, settings: TokenMergingSettings, hw: tuple[int, int]) -> None:
        super().__init__(settings, hw)
        self._vitdet = PartitionedAttentionPolicy(hw)
        self.batch = 0
        self._ps = 0
        self.padded_hw: tuple[int, int] | None = None

    def _partition(self, t: torch.Tensor, ps: int) -> torch.Tensor:
        H, W = self.grid_size
        return partition_tokens(t.reshape(t.shape[0], H, W, t.shape[-1]), ps)[0]

    def _start(self, state: BlockLoopState):
        vit = state.vit
        ps = vit.partition_size
        x = state.x
        self.batch = x.shape[0]
        H, W = self.grid_size
        patches = self._partition(x, ps)
        self.padded_hw = (H + (-H) % ps, W + (-W) % ps)
        self._padding = self.padded_hw != (H, W)
        pos = state.pos if state.pos.dim() == 3 else state.pos.expand(self.batch, -1, -1)
        pos = self._partition(pos if pos.is_floating_point() else pos.float(), ps)
        sizes = self._partition(x.new_ones(self.batch, H * W, 1, dtype=torch.float32), ps)
        return patches, pos, sizes, (ps, ps)

    def _layout(self, t: torch.Tensor) -> torch.Tensor:
        H, W = self.grid_size
        B = self.batch
        if self.holder is None:  # the grid (a global block, the tokens) or partitions
            return self._partition(t, self._ps) if t.shape[:2] == (B, H * W) else t
        n = self.sizes.shape[1]
        return t if t.shape[0] != B or t.shape[1] == n else t.reshape(-1, n, t.shape[-1])

    def before_block(self, index: int, state: BlockLoopState) -> None:
        if self.holder is None:
            self.batch = state.x.shape[0]
            self._ps = state.vit.partition_size
        super().before_block(index, state)

    def _run(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        if self.holder is None:
            return self._vitdet.block(index, state)
        if not vit.is_global(index):
            return vit.run_block(index, state.x, state.pos, state.attn_mask)
        B = self.batch
        Bp, n, C = state.x.shape
        mask = state.attn_mask
        if mask is not None:
            mask = mask.reshape(B, 1, 1, -1)
        out = vit.run_block(index, state.x.reshape(B, -1, C),
                            state.pos.reshape(B, -1, state.pos.shape[-1]), mask)
        return out.reshape(Bp, n, C)

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        grid = unpartition_tokens(out, self._ps, self.padded_hw, self.grid_size)
        return grid.reshape(self.batch, -1, out.shape[-1])


def merged_partitioned_forward(vit, tokens: torch.Tensor, pos: torch.Tensor,
                               hw: tuple[int, int], settings: TokenMergingSettings
                               ) -> list[torch.Tensor]:
    """Token-merging ``forward_grid`` of a ViTDet-style ViT
    (:class:`~mmwinwin.layers.ViTDetVisionTransformer`) on a whole ``(B, H*W, C)`` token
    grid; returns the ``out_indices`` outputs as ``(B, H*W, C)``."""
    settings.check_alpha(vit.num_layers)
    ps = vit.partition_size
    settings.check_tokens((ps, ps), vit.num_layers)
    pos = pos.to(device=tokens.device)
    x = vit.prepare_tokens(tokens, pos, hw)
    if vit.rope_type != 'axial':
        pos = vit.rope_positions(pos, hw)
    return run_blocks(vit, x, pos, PartitionedTokenMergingPolicy(settings, tuple(hw)))
