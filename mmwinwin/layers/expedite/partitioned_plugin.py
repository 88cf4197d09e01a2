"""Expedited forward of a ViTDet-style windowed ViT: clusters per window (pure PyTorch).

After block ``alpha`` every attention window's tokens are clustered separately
(``layers/expedite/partitioned.py``); windowed blocks then attend among the clusters of one
window, global blocks among all clusters of the image; each cluster carries the
assignment-weighted mean ``(y, x)`` of its tokens for RoPE. Outputs after ``alpha``
are rebuilt on the full token grid by the reconstruction layer. All of it is
:class:`PartitionedExpeditePolicy`, a token policy of the one block loop
(``layers/vit/block_loop.py``).
"""
from __future__ import annotations

import torch

from .plugin import ExpediteSettings
from .partitioned import PartitionClusters, cluster_partitions, reconstruct_partitions
from ..vit.block_loop import BlockLoopState, run_blocks
from ..vit.vitdet import PartitionedAttentionPolicy, ViTDetVisionTransformer

__all__ = ['PartitionedExpeditePolicy', 'expedited_partitioned_forward']


class PartitionedExpeditePolicy(PartitionedAttentionPolicy):
    """Token policy of Expedite in a ViTDet-style ViT: ViTDet's partitioned / global
    attention up to block ``alpha``; then the tokens of each attention partition are
    clustered (the loop carries ``(B * partitions, clusters, C)`` at the clusters'
    weighted-mean positions): partitioned blocks attend among one partition's clusters,
    global blocks among all clusters of an image; outputs after ``alpha`` are rebuilt on
    the full ``(B, H*W, C)`` grid."""

    def __init__(self, settings: ExpediteSettings, hw: tuple[int, int]) -> None:
        super().__init__(hw)
        self.settings = settings
        self.clusters: PartitionClusters | None = None
        self.batch = 0  # images in the batch, set when clustering

    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        if self.clusters is None:
            return super().block(index, state)
        vit, x = state.vit, state.x
        if vit.is_global(index):  # all clusters of an image together
            B = self.batch
            y = vit.run_block(index, x.reshape(B, -1, x.shape[-1]), state.pos.reshape(B, -1, 2))
            return y.reshape(x.shape[0], -1, x.shape[-1])
        return vit.run_block(index, x, state.pos)  # the clusters of one partition together

    def output(self, index: int, state: BlockLoopState) -> torch.Tensor:
        out = state.vit.output_tokens(index, state.x)
        if self.clusters is not None:
            H, W = self.hw
            out = reconstruct_partitions(out, self.clusters).reshape(self.batch, H * W, -1)
        return out

    def after_block(self, index: int, state: BlockLoopState) -> None:
        s, vit = self.settings, state.vit
        if index == s.alpha - 1 and s.alpha < vit.num_layers:
            H, W = self.hw
            B, _, C = state.x.shape
            self.batch = B
            self.clusters = cluster_partitions(state.x.reshape(B, H, W, C), vit.partition_size, s,
                                               pos=state.pos.reshape(-1, H, W, 2))
            state.x, state.pos = self.clusters.centers, self.clusters.pos


def expedited_partitioned_forward(vit: ViTDetVisionTransformer, tokens: torch.Tensor,
                                  pos: torch.Tensor, hw: tuple[int, int],
                                  settings: ExpediteSettings) -> list[torch.Tensor]:
    """Like ``vit.forward_grid`` with Expedite; returns ``(B, H*W, C)`` per out index."""
    settings.check_alpha(vit.num_layers)
    x = vit.prepare_tokens(tokens, pos, hw)
    if getattr(vit, 'rope_type', 'axial') != 'axial':  # affine: cluster means stay exact
        pos = vit.rope_positions(pos, hw)
    return run_blocks(vit, x, pos, PartitionedExpeditePolicy(settings, hw))
