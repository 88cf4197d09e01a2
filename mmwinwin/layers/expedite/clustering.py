"""Expedite's token clustering layer (parameter-free, no fine-tuning).

Turns the ``N = H * W`` patch tokens of a ViT layer into ``M = h * w`` cluster
tokens that the remaining layers process instead (Liang et al., NeurIPS 2022):

1. initial centres: adaptive average pooling of the ``(H, W)`` token grid to ``(h, w)``;
2. each token may join only the centres of a ``window x window`` neighbourhood of its
   initial cell (``local_neighbors.py``): by default cut at the grid border as in the
   official code (``candidate_window='cut'``), or shifted inwards (``'shifted'``);
3. ``iters`` times: ``D`` = squared L2 distance token-candidate, ``A = softmax(-t D)``
   over the candidates (``A`` detached), new centre =
   ``sum_i A_ij x_i / clamp(sum_i A_ij, 1e-16)``: a centre that receives no weight
   becomes the zero vector (official, ``empty_cluster='zero'``) or keeps its previous
   value (``empty_cluster='keep'``).

Only local token-candidate products are computed (``K = window**2`` candidates per
token, batched per tile of cells, see ``local_neighbors.py``), so time and memory grow
linearly with the number of tokens. Distances and softmax are computed in fp32 with
autocast disabled, so fp16 / bf16 models are safe; the centres come back in the input
dtype. Nothing is stored on
any module: :func:`cluster_tokens` returns a :class:`ClusterResult` with everything
reconstruction needs.

Any batch of independent grids of one shape can be clustered in one call (e.g. the
windows of a windowed ViT folded into the batch dimension). With RoPE, pass the
tokens' ``(y, x)`` positions: each cluster gets the assignment-weighted mean position
of its tokens (``ClusterResult.pos``).

Example::

    res = cluster_tokens(x, (40, 40), cluster_grid=(28, 28), iters=5, window=5,
                         temperature=0.02, pos=pos)        # x: (B, 1600, C)
    y = run_remaining_layers(res.centers, res.pos)          # (B, 784, C)
    w = reconstruction_weights(x, res, k=20, temperature=0.02)
    out = reconstruct_tokens(y, w)                          # (B, 1600, C)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .local_neighbors import (LocalPlan, build_plan, check_candidate_window, local_scatter_mean,
                              local_sq_distances, resolve_cluster_grid, tile_tokens,
                              token_cells)

__all__ = ['ClusterResult', 'cluster_tokens', 'EMPTY_CLUSTERS']

EMPTY_CLUSTERS = ('zero', 'keep')


@dataclass
class ClusterResult:
    """Output of :func:`cluster_tokens`.

    Attributes:
        centers: ``(B, M, C)`` cluster tokens, input dtype (row-major on ``cluster_grid``).
        pos: ``(B, M, 2)`` fp32 assignment-weighted mean ``(y, x)`` of the member tokens,
            or ``None`` when no positions were given.
        plan: the :class:`~mmwinwin.layers.expedite.local_neighbors.LocalPlan` (index tables);
            ``plan.index`` is the ``(N, K)`` candidate centres of each token.
        assign: ``(B, N, K)`` fp32 soft assignment of the last iteration (rows sum to 1,
            zero on candidates outside the cut window), or ``None`` when ``iters == 0``.
        token_grid: ``(H, W)``.
        cluster_grid: ``(h, w)``.
        temperature: the ``t`` used (reconstruction defaults to it).
    """
    centers: torch.Tensor
    pos: torch.Tensor | None
    plan: LocalPlan
    assign: torch.Tensor | None
    token_grid: tuple[int, int]
    cluster_grid: tuple[int, int]
    temperature: float

    @property
    def index(self) -> torch.Tensor:
        return self.plan.index

    @property
    def num_clusters(self) -> int:
        return self.cluster_grid[0] * self.cluster_grid[1]

    def hard_assignment(self) -> torch.Tensor:
        """``(B, N)`` index of each token's most likely cluster (for visualisation)."""
        if self.assign is None:
            cy, cx = token_cells(self.token_grid, self.cluster_grid, self.centers.device)
            own = cy * self.cluster_grid[1] + cx
            return own.expand(self.centers.shape[0], -1).clone()
        best = self.assign.argmax(-1)  # (B, N)
        return self.index.expand(best.shape[0], -1, -1).gather(2, best[..., None])[..., 0]


def _check_tokens(x: torch.Tensor, token_grid: tuple[int, int]) -> tuple[int, int]:
    if x.dim() != 3:
        raise ValueError(f'Tokens must be (B, N, C), got shape {tuple(x.shape)}.')
    if (not isinstance(token_grid, (tuple, list)) or len(token_grid) != 2):
        raise ValueError(f'token_grid must be (H, W), got {token_grid!r}.')
    H, W = int(token_grid[0]), int(token_grid[1])
    if H * W != x.shape[1]:
        raise ValueError(f'token_grid {H}x{W} = {H * W} tokens does not match the {x.shape[1]} '
                         f'tokens given (shape {tuple(x.shape)}). Pass the patch tokens only '
                         f'(no cls token) of a full {H}x{W} grid, row-major.')
    return H, W


def cluster_tokens(x: torch.Tensor, token_grid: tuple[int, int],
                   cluster_grid: int | tuple[int, int] | None = None,
                   num_clusters: int | None = None, iters: int = 5, window: int = 5,
                   temperature: float = 0.02, pos: torch.Tensor | None = None,
                   candidate_window: str = 'cut', empty_cluster: str = 'zero') -> ClusterResult:
    """Cluster a batch of token grids (Expedite's token clustering layer).

    Args:
        x: ``(B, N, C)`` patch tokens (residual stream, before any norm), row-major on
            ``token_grid``; no cls token.
        token_grid: ``(H, W)`` with ``H * W == N``.
        cluster_grid: ``(h, w)`` (or an int for ``h == w``) with ``h <= H`` and ``w <= W``.
        num_clusters: alternatively a count; the grid then follows the token grid's aspect.
        iters: number of assignment/update iterations (5 in the paper; 0 = pooling only).
        window: odd size of the candidate window around each token's initial cell.
        temperature: ``t`` in ``softmax(-t * D)`` (multiplies the squared distance).
        pos: optional ``(N, 2)`` or ``(B, N, 2)`` token ``(y, x)`` positions (RoPE).
        candidate_window: ``'cut'`` (official: the window cut at the cluster-grid border)
            or ``'shifted'`` (shifted inwards: every token ``window**2`` candidates).
        empty_cluster: ``'zero'`` (official: a centre with no weight becomes 0) or
            ``'keep'`` (it keeps its previous value). Cluster positions always keep
            theirs.

    Returns:
        a :class:`ClusterResult`.
    """
    H, W = _check_tokens(x, token_grid)
    h, w = resolve_cluster_grid((H, W), cluster_grid, num_clusters)
    if not isinstance(iters, int) or iters < 0:
        raise ValueError(f'iters must be an int >= 0, got {iters!r}.')
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0 (it multiplies the squared distance), '
                         f'got {temperature!r}.')
    check_candidate_window(candidate_window)
    if empty_cluster not in EMPTY_CLUSTERS:
        raise ValueError(f"empty_cluster must be 'zero' (official: a centre that receives no "
                         f"weight becomes the zero vector) or 'keep' (it keeps its previous "
                         f"value), got {empty_cluster!r}.")
    B, N, C = x.shape
    plan = build_plan((H, W), (h, w), window, device=x.device,
                      candidate_window=candidate_window)
    if pos is not None:
        if pos.shape[-2:] != (N, 2) or pos.dim() not in (2, 3):
            raise ValueError(f'pos must be (N, 2) or (B, N, 2) with N={N}, got '
                             f'{tuple(pos.shape)}.')
        pos = pos.to(device=x.device, dtype=torch.float32).expand(B, N, 2)

    with torch.autocast(device_type=x.device.type, enabled=False):
        xf = x.float()

        def pool(v: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, M, D)
            # a channels-last view of the token grid, no transposed copy: torch's
            # channels-last pooling kernel reads the rows as they lie (16x faster at
            # (1, 1600, 1024) on CPU than pooling a transposed copy; same bins and sums)
            D = v.shape[2]
            grid = v.reshape(B, H, W, D).permute(0, 3, 1, 2)
            return F.adaptive_avg_pool2d(grid, (h, w)).permute(0, 2, 3, 1).reshape(B, h * w, D)

        centers = pool(xf)
        cpos = pool(pos) if pos is not None else None
        assign = None
        if iters:
            xt = tile_tokens(plan, xf)
            xx = (xf * xf).sum(-1).detach()
        for _ in range(iters):
            with torch.no_grad():
                dist = local_sq_distances(plan, xf, centers, xt=xt.detach(), xx=xx)
                if plan.valid is not None:
                    dist = dist.masked_fill(~plan.valid, float('inf'))
                assign = torch.softmax(-temperature * dist, dim=-1)
            centers = local_scatter_mean(plan, xf, assign,
                                         centers if empty_cluster == 'keep' else None, vt=xt)
        if cpos is not None and assign is not None:
            cpos = local_scatter_mean(plan, pos, assign, cpos)
    return ClusterResult(centers=centers.to(x.dtype), pos=cpos, plan=plan, assign=assign,
                         token_grid=(H, W), cluster_grid=(h, w), temperature=float(temperature))
