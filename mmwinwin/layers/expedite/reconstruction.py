"""Expedite's token reconstruction layer (parameter-free).

After the clustered layers, every one of the ``N`` original tokens is rebuilt from the
``M`` refined cluster tokens (Liang et al., NeurIPS 2022):

* ``D`` = squared L2 distance between the layer-alpha tokens and the centres right
  after clustering (both kept from :func:`~mmwinwin.layers.cluster_tokens`);
* keep the ``k`` nearest centres per token, weight ``exp(-t * (D - min_row D))`` --
  subtracting the row minimum gives the same normalised weights as ``exp(-t D)`` but
  never underflows to all-zero rows;
* rows are L2-normalised (``norm='l2'``, what the official code does; ``norm='sum'``
  gives a convex combination instead);
* output token = weighted sum of its ``k`` refined centres.

Choice made here: the ``k`` nearest are taken among the token's local candidates (the
same ``window x window`` neighbourhood, shifted inwards at the border, that clustering
used), not among all ``M`` centres. This keeps the cost ``O(N K C)`` with no dense
``N x M`` matrix. It changes nothing that matters: a centre outside the window is a
weighted mean of tokens at least ``window // 2`` cells away which the token itself
could not join, and with the paper's settings (window 5, k 20 of 25 candidates) the
discarded far centres have weights ``exp(-t ΔD)`` that are negligible next to the kept
near ones. ``k`` must therefore be at most ``min(window, h) * min(window, w)``.

Weights are computed once (:func:`reconstruction_weights`) and applied to any number
of refined tensors of any channel count (several ViT levels, or segmentation logits):
:func:`reconstruct_tokens` / :func:`reconstruct_map`. Everything is computed in fp32
and returned in the refined tensor's dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .clustering import ClusterResult
from .local_neighbors import LocalPlan, local_combine, local_sq_distances

__all__ = ['ReconstructionWeights', 'reconstruction_weights', 'reconstruct_tokens',
           'reconstruct_map']


@dataclass
class ReconstructionWeights:
    """``weight``: ``(B, N, K)`` fp32 over each token's ``K`` local candidates
    (``plan.index``), zero outside its ``k`` nearest; ``plan``: the clustering's tables."""
    weight: torch.Tensor
    plan: LocalPlan
    k: int

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.plan.token_grid

    @property
    def cluster_grid(self) -> tuple[int, int]:
        return self.plan.cluster_grid

    @property
    def num_clusters(self) -> int:
        return self.plan.num_clusters

    def nearest(self) -> torch.Tensor:
        """``(B, N)`` index of each token's nearest centre (largest weight), i.e. the
        hard cluster assignment after clustering (for visualisation)."""
        best = self.weight.argmax(-1, keepdim=True)
        return self.plan.index.expand(best.shape[0], -1, -1).gather(2, best)[..., 0]

    def topk(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index, weight)``, each ``(B, N, k)``: the kept centres and their weights."""
        w, sel = self.weight.topk(self.k, dim=-1)
        return self.plan.index.expand(w.shape[0], -1, -1).gather(2, sel), w


def reconstruction_weights(tokens: torch.Tensor, clusters: ClusterResult, k: int = 20,
                           temperature: float | None = None,
                           norm: str = 'l2') -> ReconstructionWeights:
    """Weights that rebuild the ``N`` tokens from the ``M`` clusters.

    Args:
        tokens: ``(B, N, C)`` the tokens that were clustered (layer alpha).
        clusters: the :class:`ClusterResult` of clustering ``tokens``.
        k: number of nearest candidate centres per token (20 in the paper).
        temperature: ``t`` in ``exp(-t D)``; defaults to the clustering's.
        norm: ``'l2'`` (official code) or ``'sum'`` row normalisation.
    """
    t = clusters.temperature if temperature is None else temperature
    if not t > 0:
        raise ValueError(f'temperature must be > 0, got {t!r}.')
    if norm not in ('l2', 'sum'):
        raise ValueError(f"norm must be 'l2' (as the official code) or 'sum', got {norm!r}.")
    K = clusters.index.shape[1]
    M = clusters.num_clusters
    if not isinstance(k, int) or k < 1:
        raise ValueError(f'k must be a positive int, got {k!r}.')
    if k > M:
        raise ValueError(f'k={k} is larger than the number of clusters ({M} = '
                         f'{clusters.cluster_grid[0]}x{clusters.cluster_grid[1]}). Use k <= {M}.')
    if k > K:
        raise ValueError(f'k={k} is larger than the {K} local candidate centres of each token '
                         f'(window x window, cut to the {clusters.cluster_grid[0]}x'
                         f'{clusters.cluster_grid[1]} cluster grid). Use k <= {K} or a larger '
                         f'window.')
    if tokens.shape[:2] != (clusters.centers.shape[0], clusters.index.shape[0]):
        raise ValueError(f'tokens {tuple(tokens.shape)} do not match the clustered batch '
                         f'(B={clusters.centers.shape[0]}, N={clusters.index.shape[0]}).')
    with torch.autocast(device_type=tokens.device.type, enabled=False), torch.no_grad():
        dist = local_sq_distances(clusters.plan, tokens.float(), clusters.centers.float())
        dk, sel = dist.topk(k, dim=-1, largest=False, sorted=False)  # (B, N, k)
        wk = torch.exp(-t * (dk - dk.amin(-1, keepdim=True)))
        if norm == 'l2':
            wk = wk / wk.norm(dim=-1, keepdim=True)
        else:
            wk = wk / wk.sum(-1, keepdim=True)
        weight = torch.zeros_like(dist).scatter_(2, sel, wk)
    return ReconstructionWeights(weight=weight, plan=clusters.plan, k=k)


def reconstruct_tokens(refined: torch.Tensor, weights: ReconstructionWeights) -> torch.Tensor:
    """Rebuild ``(B, N, D)`` tokens from ``(B, M, D)`` refined cluster tokens."""
    B, N, _ = weights.weight.shape
    if refined.dim() != 3 or refined.shape[0] != B or refined.shape[1] != weights.num_clusters:
        raise ValueError(f'refined clusters must be (B={B}, M={weights.num_clusters}, D), got '
                         f'{tuple(refined.shape)}.')
    with torch.autocast(device_type=refined.device.type, enabled=False):
        out = local_combine(weights.plan, weights.weight, refined.float())
    return out.to(refined.dtype)


def reconstruct_map(refined: torch.Tensor, weights: ReconstructionWeights) -> torch.Tensor:
    """Rebuild a ``(B, D, H, W)`` map from a ``(B, D, h, w)`` map on the cluster grid
    (e.g. segmentation logits computed on the clusters)."""
    if refined.dim() != 4 or tuple(refined.shape[2:]) != tuple(weights.cluster_grid):
        raise ValueError(f'Expected a (B, D, {weights.cluster_grid[0]}, '
                         f'{weights.cluster_grid[1]}) map on the cluster grid, got '
                         f'{tuple(refined.shape)}.')
    B, D = refined.shape[:2]
    out = reconstruct_tokens(refined.flatten(2).transpose(1, 2), weights)
    return out.transpose(1, 2).reshape(B, D, *weights.token_grid).contiguous()
