"""Expedite's token reconstruction layer (parameter-free).

After the clustered layers, every one of the ``N`` original tokens is rebuilt from the
``M`` refined cluster tokens (Liang et al., NeurIPS 2022):

* ``D`` = squared L2 distance between the layer-alpha tokens and the centres right
  after clustering (both kept from :func:`~mmwinwin.layers.cluster_tokens`);
* keep the ``k`` nearest centres per token **over all M centres** (official,
  ``topk='global'``), weight ``exp(-t * (D - min_row D))`` -- subtracting the row
  minimum is a positive per-row scale that the L2 normalisation cancels, so this equals
  the official ``exp(-t D)`` except where the official code underflows (``t * D_min``
  above about 28 shrinks a row, above about 100 zeroes it), and never gives all-zero rows;
* rows are L2-normalised (``norm='l2'``, what the official code does; ``norm='sum'``
  gives a convex combination instead);
* output token = weighted sum of its ``k`` refined centres.

The global top-k is computed for a chunk of tokens against all ``M`` centres at a time
(at most ``_CHUNK_ELEMENTS`` distances in memory). Where the whole ``B x N x M`` weight
matrix is small (at most ``_DENSE_ELEMENTS`` entries: Segmenter, DPT, Swin windows) it is
kept dense. Above that, only ``(B, N, k')`` indices and weights are kept (memory
``O(N k')``; reconstruction scatters chunks into dense blocks for one matrix product),
where ``k' >= k`` is the largest number of centres at least as near as a token's k-th
(``k`` unless centres tie). Both forms apply the official rule exactly, ties included:
several equal centres, e.g. the zero centres of padded Swin windows, are all kept when
they tie with the k-th.

``topk='local'`` (the former default) takes the ``k`` nearest among the token's local
candidates (its clustering window) instead: ``O(N K C)``, no ``N x M`` product, ``k``
at most ``min(window, h) * min(window, w)``; ``mmwinwin.experiments.expedite_divergence``
measures how far it is from the official result.

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
           'reconstruct_map', 'RECONSTRUCTION_TOPK']

RECONSTRUCTION_TOPK = ('global', 'local')

# distances held at once by the global top-k (per chunk of tokens x all M centres x batch)
_CHUNK_ELEMENTS = 1 << 22
# largest B x N x M kept as a dense weight matrix (exact official rule, ties included)
_DENSE_ELEMENTS = 1 << 24


@dataclass
class ReconstructionWeights:
    """Reconstruction weights, in one of three forms (``form``):

    * ``'dense'`` (global top-k, small grids): ``weight`` ``(B, N, M)`` over all centres,
      zero outside the kept ones;
    * ``'topk'`` (global top-k, large grids): ``index`` ``(B, N, k')`` the kept centres of
      each token and ``weight`` ``(B, N, k')`` their weights (``k' >= k`` when centres
      tie with the k-th; unused slots have weight 0);
    * ``'local'``: ``weight`` ``(B, N, K)`` over each token's ``K`` local candidates
      (``plan.index``), zero outside its ``k`` nearest.

    ``plan``: the clustering's tables."""
    weight: torch.Tensor
    plan: LocalPlan
    k: int
    index: torch.Tensor | None = None
    form: str = 'local'

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
        return self._columns(best.shape[0]).gather(2, best)[..., 0]

    def _columns(self, batch: int) -> torch.Tensor:
        if self.form == 'topk':
            return self.index
        if self.form == 'dense':
            M = self.weight.shape[-1]
            return torch.arange(M, device=self.weight.device).expand(*self.weight.shape)
        return self.plan.index.expand(batch, -1, -1)

    def topk(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index, weight)``, each ``(B, N, k)``: the kept centres and their weights."""
        w, sel = self.weight.topk(self.k, dim=-1)
        return self._columns(w.shape[0]).gather(2, sel), w


def _token_chunk(batch: int, num_tokens: int, num_clusters: int) -> int:
    return max(1, min(num_tokens, _CHUNK_ELEMENTS // max(1, batch * num_clusters)))


def _normalise(wk: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == 'l2':
        return wk / wk.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return wk / wk.sum(-1, keepdim=True)


def _global_weights(tokens: torch.Tensor, centers: torch.Tensor, k: int, t: float,
                    norm: str) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The official top-k over all centres, chunked over tokens: ``(None, (B, N, M))``
    dense weights when small, else ``(index, weight)`` each ``(B, N, k')``, where
    ``k' >= k`` makes room for centres tied with the k-th (padded with zero weights).
    Both keep every centre at least as near as the k-th, ties included."""
    B, N, _ = tokens.shape
    M = centers.shape[1]
    dense = B * N * M <= _DENSE_ELEMENTS
    cc = (centers * centers).sum(-1)[:, None, :]                    # (B, 1, M)
    ct = centers.transpose(1, 2)
    step = _token_chunk(B, N, M)
    idx, wts = [], []
    for s in range(0, N, step):
        x = tokens[:, s:s + step]
        # |c|^2 - 2 x.c in one fused product (baddbmm), then + |x|^2 in place
        d = torch.baddbmm(cc, x, ct, alpha=-2).add_((x * x).sum(-1, keepdim=True))
        d = d.clamp_min_(0)
        dmin = d.amin(-1, keepdim=True)
        # the k-th smallest = the largest of the k smallest (no sort needed)
        kth = d.topk(k, dim=-1, largest=False, sorted=False).values.amax(-1, keepdim=True)
        keep = d <= kth
        if dense:
            w = d.sub_(dmin).mul_(-t).exp_().mul_(keep)  # d is not needed any more
            wts.append(_normalise(w, norm))
            continue
        width = int(keep.sum(-1).max())  # k, or more where centres tie with the k-th
        dk, sel = d.topk(width, dim=-1, largest=False, sorted=False)  # (B, n, width)
        wk = torch.exp(-t * (dk - dmin)) * (dk <= kth)
        idx.append(sel)
        wts.append(_normalise(wk, norm))
    if dense:
        return None, torch.cat(wts, 1)
    width = max(i.shape[-1] for i in idx)
    idx = [torch.nn.functional.pad(i, (0, width - i.shape[-1])) for i in idx]
    wts = [torch.nn.functional.pad(w, (0, width - w.shape[-1])) for w in wts]
    return torch.cat(idx, 1), torch.cat(wts, 1)


def reconstruction_weights(tokens: torch.Tensor, clusters: ClusterResult, k: int = 20,
                           temperature: float | None = None,
                           norm: str = 'l2', topk: str = 'global') -> ReconstructionWeights:
    """Weights that rebuild the ``N`` tokens from the ``M`` clusters.

    Args:
        tokens: ``(B, N, C)`` the tokens that were clustered (layer alpha).
        clusters: the :class:`ClusterResult` of clustering ``tokens``.
        k: number of nearest candidate centres per token (20 in the paper).
        temperature: ``t`` in ``exp(-t D)``; defaults to the clustering's.
        norm: ``'l2'`` (official code) or ``'sum'`` row normalisation.
        topk: ``'global'`` (official: the k nearest over all M centres) or ``'local'``
            (the k nearest among the token's clustering candidates).
    """
    t = clusters.temperature if temperature is None else temperature
    if not t > 0:
        raise ValueError(f'temperature must be > 0, got {t!r}.')
    if norm not in ('l2', 'sum'):
        raise ValueError(f"norm must be 'l2' (as the official code) or 'sum', got {norm!r}.")
    if topk not in RECONSTRUCTION_TOPK:
        raise ValueError(f"topk must be 'global' (official: the k nearest over all M centres) "
                         f"or 'local' (among the clustering candidates), got {topk!r}.")
    K = clusters.index.shape[1]
    M = clusters.num_clusters
    if not isinstance(k, int) or k < 1:
        raise ValueError(f'k must be a positive int, got {k!r}.')
    if k > M:
        raise ValueError(f'k={k} is larger than the number of clusters ({M} = '
                         f'{clusters.cluster_grid[0]}x{clusters.cluster_grid[1]}). Use k <= {M}.')
    if topk == 'local' and k > K:
        raise ValueError(f'k={k} is larger than the {K} local candidate centres of each token '
                         f'(window x window, cut to the {clusters.cluster_grid[0]}x'
                         f'{clusters.cluster_grid[1]} cluster grid). Use k <= {K} or a larger '
                         f"window, or topk='global'.")
    if tokens.shape[:2] != (clusters.centers.shape[0], clusters.index.shape[0]):
        raise ValueError(f'tokens {tuple(tokens.shape)} do not match the clustered batch '
                         f'(B={clusters.centers.shape[0]}, N={clusters.index.shape[0]}).')
    with torch.autocast(device_type=tokens.device.type, enabled=False), torch.no_grad():
        if topk == 'global':
            index, weight = _global_weights(tokens.float(), clusters.centers.float(), k, t,
                                            norm)
            return ReconstructionWeights(weight=weight, plan=clusters.plan, k=k, index=index,
                                         form='dense' if index is None else 'topk')
        dist = local_sq_distances(clusters.plan, tokens.float(), clusters.centers.float())
        if clusters.plan.valid is not None:  # cut window: no weight outside it
            dist = dist.masked_fill(~clusters.plan.valid, float('inf'))
        dk, sel = dist.topk(k, dim=-1, largest=False, sorted=False)  # (B, N, k)
        wk = torch.exp(-t * (dk - dk.amin(-1, keepdim=True)))
        wk = _normalise(wk, norm)
        weight = torch.zeros_like(dist).scatter_(2, sel, wk)
    return ReconstructionWeights(weight=weight, plan=clusters.plan, k=k)


def reconstruct_tokens(refined: torch.Tensor, weights: ReconstructionWeights) -> torch.Tensor:
    """Rebuild ``(B, N, D)`` tokens from ``(B, M, D)`` refined cluster tokens."""
    B, N, _ = weights.weight.shape
    if refined.dim() != 3 or refined.shape[0] != B or refined.shape[1] != weights.num_clusters:
        raise ValueError(f'refined clusters must be (B={B}, M={weights.num_clusters}, D), got '
                         f'{tuple(refined.shape)}.')
    with torch.autocast(device_type=refined.device.type, enabled=False):
        if weights.form == 'local':
            out = local_combine(weights.plan, weights.weight, refined.float())
        elif weights.form == 'dense':
            out = torch.matmul(weights.weight, refined.float())
        else:
            out = _combine_global(weights, refined.float())
    return out.to(refined.dtype)


def _combine_global(weights: ReconstructionWeights, refined: torch.Tensor) -> torch.Tensor:
    """Chunks of tokens: scatter their ``k`` weights into a dense ``(B, n, M)`` block,
    one matrix product with the ``(B, M, D)`` refined clusters."""
    B, N, _ = weights.weight.shape
    M = refined.shape[1]
    step = _token_chunk(B, N, M)
    outs = []
    for s in range(0, N, step):
        w = weights.weight[:, s:s + step]
        # add, not write: unused slots point at centre 0 with weight 0
        dense = w.new_zeros(B, w.shape[1], M).scatter_add_(2, weights.index[:, s:s + step], w)
        outs.append(torch.matmul(dense, refined))
    return torch.cat(outs, 1)


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
