"""Expedited forward of a ViTDet-style windowed ViT: clusters per window (pure PyTorch).

After block ``alpha`` every attention window's tokens are clustered separately
(``layers/expedite/partitioned.py``); windowed blocks then attend among the clusters of one
window, global blocks among all clusters of the image; each cluster carries the
assignment-weighted mean ``(y, x)`` of its tokens for RoPE. Outputs after ``alpha``
are rebuilt on the full token grid by the reconstruction layer.
"""
from __future__ import annotations

import torch

from .plugin import ExpediteSettings
from .partitioned import cluster_partitions, reconstruct_partitions
from ..vit.vitdet import ViTDetVisionTransformer

__all__ = ['expedited_partitioned_forward']


def expedited_partitioned_forward(vit: ViTDetVisionTransformer, tokens: torch.Tensor,
                               pos: torch.Tensor, hw: tuple[int, int],
                               settings: ExpediteSettings) -> list[torch.Tensor]:
    """Like ``vit.forward_grid`` with Expedite; returns ``(B, H*W, C)`` per out index."""
    settings.check_alpha(vit.num_layers)
    B, N, C = tokens.shape
    H, W = hw
    x = vit.prepare_tokens(tokens, pos, hw)
    if getattr(vit, 'rope_type', 'axial') != 'axial':  # affine: cluster means stay exact
        pos = vit.rope_positions(pos, hw)
    clusters = None
    outs = []
    for i in range(vit.num_layers):
        if clusters is None:
            x = vit.run_block(i, x, pos) if vit.is_global(i) else \
                vit.run_windowed_block(i, x, pos, hw)
        elif vit.is_global(i):  # all clusters of an image together
            nw = x.shape[0] // B
            y = vit.run_block(i, x.reshape(B, -1, C), cpos.reshape(B, -1, 2))
            x = y.reshape(B * nw, -1, C)
        else:  # the clusters of one window together
            x = vit.run_block(i, x, cpos)
        if i in vit.out_indices:
            out = vit.output_tokens(i, x)
            if clusters is not None:
                out = reconstruct_partitions(out, clusters).reshape(B, N, C)
            outs.append(out)
        if i == settings.alpha - 1 and settings.alpha < vit.num_layers:
            grid_pos = pos.reshape(-1, H, W, 2)
            clusters = cluster_partitions(x.reshape(B, H, W, C), vit.window_size, settings,
                                       pos=grid_pos)
            x, cpos = clusters.centers, clusters.pos
    return outs
