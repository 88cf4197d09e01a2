"""Expedite inside windowed attention: clusters kept per window (pure PyTorch).

For backbones whose blocks attend inside windows (ViTDet-style ViTs, Swin), the paper
clusters each window's tokens separately (Mask2Former Swin-L: 12x12 tokens -> 64 = 8x8
clusters per window), so the later blocks still attend inside windows -- of clusters.

* :func:`cluster_partitions`: split a ``(B, H, W, C)`` grid into ``window x window``
  windows (padded with zero tokens when ``H`` or ``W`` is not a multiple, as the
  official code does; ``partition_padding='replicate'`` pads with copies of the edge
  tokens instead, so padding does not drag centres towards zero), cluster every
  window to a ``(ch, cw)`` grid in one batched call, and compute the reconstruction
  weights (both from ``clustering.py`` / ``reconstruction.py``).
* :func:`cluster_grid_of_partitions` / :func:`partitions_of_cluster_grid`: lay the windows'
  cluster grids side by side as one ``(B, nWh*ch, nWw*cw, C)`` map (and back), so a
  Swin stage can keep running (shifted) window attention on it with window ``ch``.
* :func:`reconstruct_partitions`: rebuild the full ``(B, H, W, C)`` grid from refined
  clusters (the padding is cropped).

Swin's relative-position-bias resizing lives with the Swin adapter
(``mmwinwin.models.expedite.partitioned``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .clustering import cluster_tokens
from .plugin import ExpediteSettings, check_finite_tokens
from .reconstruction import ReconstructionWeights, reconstruct_tokens, reconstruction_weights
from ..vit.partition import partition_tokens, unpartition_tokens

__all__ = ['PartitionClusters', 'cluster_partitions', 'reconstruct_partitions',
           'cluster_grid_of_partitions', 'partitions_of_cluster_grid', 'pad_partitions']


@dataclass
class PartitionClusters:
    """Clusters of every window, folded into the batch: ``centers (B*nW, ch*cw, C)``,
    their positions (or None), the reconstruction weights and the grid bookkeeping."""
    centers: torch.Tensor
    pos: torch.Tensor | None
    weights: ReconstructionWeights
    partition_size: int
    cluster_grid: tuple[int, int]
    hw: tuple[int, int]
    padded_hw: tuple[int, int]
    batch_size: int

    @property
    def num_windows(self) -> tuple[int, int]:
        return (self.padded_hw[0] // self.partition_size,
                self.padded_hw[1] // self.partition_size)


PARTITION_PADDINGS = ('zeros', 'replicate')


def pad_partitions(x: torch.Tensor, partition_size: int, mode: str = 'zeros') -> torch.Tensor:
    """Pad a ``(B, H, W, C)`` grid at the bottom / right to multiples of ``partition_size``
    with zeros (official) or copies of the edge tokens (``'replicate'``)."""
    if mode not in PARTITION_PADDINGS:
        raise ValueError(f"partition_padding must be 'zeros' (official) or 'replicate', got "
                         f"{mode!r}.")
    H, W = x.shape[1:3]
    pad_h, pad_w = (-H) % partition_size, (-W) % partition_size
    if not (pad_h or pad_w):
        return x
    if mode == 'zeros':
        return F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    x = x.permute(0, 3, 1, 2)
    x = F.pad(x, (0, pad_w, 0, pad_h), mode='replicate')
    return x.permute(0, 2, 3, 1)


def cluster_partitions(x: torch.Tensor, partition_size: int, settings: ExpediteSettings,
                    pos: torch.Tensor | None = None) -> PartitionClusters:
    """Cluster each ``partition_size`` attention partition of a ``(B, H, W, C)`` grid
    separately.

    The cluster grid per window comes from ``settings`` (``num_clusters=64`` -> 8x8 for a
    12x12 window); ``pos`` (``(B, H, W, 2)`` or ``(H, W, 2)``) gives RoPE models the
    clusters' mean positions.
    """
    if x.dim() != 4:
        raise ValueError(f'cluster_partitions expects a (B, H, W, C) grid, got {tuple(x.shape)}.')
    check_finite_tokens(x, 'Expedite clustering (per partition)')
    B, H, W, C = x.shape
    ws = partition_size
    grid = settings.grid_for((ws, ws))
    padded = pad_partitions(x, ws, settings.partition_padding)
    windows, padded_hw = partition_tokens(padded, ws)
    pos_win = None
    if pos is not None:
        pos = pos.expand(B, H, W, 2).to(torch.float32)
        # padded tokens get positions beyond the border (copies of the edge's)
        pos_win, _ = partition_tokens(pad_partitions(pos, ws, 'replicate'), ws)
    res = cluster_tokens(windows, (ws, ws), cluster_grid=grid, iters=settings.iters,
                         window=settings.window, temperature=settings.temperature, pos=pos_win,
                         candidate_window=settings.candidate_window,
                         empty_cluster=settings.empty_cluster)
    weights = reconstruction_weights(windows, res, k=settings.k,
                                     temperature=settings.recon_temperature, norm=settings.norm,
                                     topk=settings.reconstruction_topk)
    return PartitionClusters(res.centers, res.pos, weights, ws, grid, (H, W), padded_hw, B)


def reconstruct_partitions(refined: torch.Tensor, clusters: PartitionClusters) -> torch.Tensor:
    """Refined ``(B*nW, ch*cw, C)`` clusters -> the full ``(B, H, W, C)`` grid."""
    tokens = reconstruct_tokens(refined, clusters.weights)  # (B*nW, ws*ws, C)
    return unpartition_tokens(tokens, clusters.partition_size, clusters.padded_hw, clusters.hw)


def cluster_grid_of_partitions(centers: torch.Tensor, clusters: PartitionClusters) -> torch.Tensor:
    """``(B*nW, ch*cw, C)`` -> ``(B, nWh*ch, nWw*cw, C)``: windows' cluster grids side by
    side (square cluster grids only, as window attention needs)."""
    ch, cw = clusters.cluster_grid
    if ch != cw:
        raise ValueError(f'Window attention over clusters needs a square cluster grid per '
                         f'window, got {ch}x{cw}; give num_clusters as a square (e.g. 64).')
    nh, nw = clusters.num_windows
    return unpartition_tokens(centers, ch, (nh * ch, nw * cw), (nh * ch, nw * cw))


def partitions_of_cluster_grid(grid: torch.Tensor, clusters: PartitionClusters) -> torch.Tensor:
    """Inverse of :func:`cluster_grid_of_partitions`."""
    return partition_tokens(grid, clusters.cluster_grid[0])[0]
