"""Local candidate windows between a token grid and a coarser cluster grid.

Expedite lets each token talk only to the cluster centres whose cell lies in a
``window x window`` neighbourhood of the token's own initial cell. This file turns
that rule into index tables (a :class:`LocalPlan`) and three batched operations on
them, so that clustering and reconstruction never form a dense ``N x M`` matrix:

* :func:`local_sq_distances` -- ``(B, N, K)`` squared distances token-candidate;
* :func:`local_scatter_mean` -- weighted means of tokens into the centres;
* :func:`local_combine` -- each token as a weighted sum of its candidates' features.

Conventions (shared by ``clustering.py`` and ``reconstruction.py``):

* tokens are row-major on an ``(H, W)`` grid, centres row-major on ``(h, w)``;
* a token at ``(y, x)`` starts in cell ``(floor(y * h / H), floor(x * w / W))``,
  the adaptive-average-pooling bin that contains it;
* the index table always holds the window *shifted inwards* at the border of the
  cluster grid (as in neighbourhood attention): ``K = min(window, h) * min(window, w)``
  distinct centres per token. The official rule (``candidate_window='cut'``, default)
  is the window *cut* at the border: the centres with ``|d_row|, |d_col| <= window // 2``
  of the token's cell. The cut window is a subset of the shifted one, so ``'cut'``
  keeps the same tables and adds a boolean mask ``plan.valid`` (``(N, K)``); the cost
  is unchanged. ``'shifted'`` (``valid is None``) gives every token ``K`` candidates.

How it stays fast and linear: cells are grouped in tiles of ``tile x tile`` cells; the
tokens of one tile can only reach the centres of one slightly larger block of cells
(``(tile + window - 1)^2`` at most). Each tile is one small matrix product
(tokens of the tile x centres of its block), batched over all tiles with ``bmm``, and
the ``K`` true candidates of every token are read out of it. The work is
``N * (tile + window - 1)^2 * C``: linear in the number of tokens.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace

import torch

__all__ = ['LocalPlan', 'tile_tokens', 'resolve_cluster_grid', 'token_cells', 'candidate_index',
           'candidate_mask', 'CANDIDATE_WINDOWS', 'check_candidate_window', 'num_candidates',
           'build_plan', 'local_sq_distances', 'local_scatter_mean', 'local_combine']


CANDIDATE_WINDOWS = ('cut', 'shifted')


def _is_int(v) -> bool:
    """An int, or an integer 0-d tensor (``x.shape[i]`` while ``torch.jit.trace`` runs)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return (isinstance(v, torch.Tensor) and v.numel() == 1
            and not v.is_floating_point() and not v.is_complex())


def _pair(v, name: str) -> tuple[int, int]:
    """``(a, b)`` as Python ints. Integer 0-d tensors are accepted: mmseg's patch embedding
    returns its grid size as tensors under ``torch.jit.trace`` (``get_flops``,
    mmengine's ``FlopAnalyzer``); the traced graph is then specialised to that size."""
    if _is_int(v):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(i) for i in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f'{name} must be an int or a pair of ints (h, w), got {v!r}.')


def check_candidate_window(candidate_window: str) -> None:
    if candidate_window not in CANDIDATE_WINDOWS:
        raise ValueError(f"candidate_window must be 'cut' (official: the window cut at the "
                         f"cluster-grid border) or 'shifted' (shifted inwards, every token "
                         f"window**2 candidates), got {candidate_window!r}.")


def resolve_cluster_grid(token_grid: tuple[int, int],
                         cluster_grid: int | tuple[int, int] | None = None,
                         num_clusters: int | None = None) -> tuple[int, int]:
    """The ``(h, w)`` cluster grid for a token grid ``(H, W)``.

    Give either ``cluster_grid`` (``(h, w)``, or an int for a square grid) or
    ``num_clusters`` (a count: the grid then follows the token grid's aspect ratio,
    ``h / w ~ H / W``, with ``h * w`` as close to the count as the rounding allows).
    """
    H, W = _pair(tuple(token_grid), 'token_grid')
    if num_clusters is not None and (isinstance(num_clusters, bool) or (
            isinstance(num_clusters, int) and num_clusters > H * W)):  # refuse, never clamp
        raise ValueError(
            f'num_clusters={num_clusters!r} must be an int of at most the {H}x{W} = {H * W} '
            f'tokens of the token grid (more clusters than tokens is impossible; an '
            f'oversized cluster_grid is refused the same way). Use num_clusters <= {H * W} '
            f'or a larger input image.')
    if (cluster_grid is None) == (num_clusters is None):
        raise ValueError('Give exactly one of cluster_grid=(h, w) or num_clusters=M.')
    if cluster_grid is not None:
        h, w = _pair(tuple(cluster_grid) if isinstance(cluster_grid, list) else cluster_grid,
                     'cluster_grid')
    else:
        if not isinstance(num_clusters, int) or num_clusters < 1:
            raise ValueError(f'num_clusters must be a positive int, got {num_clusters!r}.')
        h = max(1, min(H, round(math.sqrt(num_clusters * H / W))))
        w = max(1, min(W, round(num_clusters / h)))
    if h < 1 or w < 1:
        raise ValueError(f'The cluster grid must be at least 1x1, got {h}x{w}.')
    if h > H or w > W:
        raise ValueError(
            f'The cluster grid {h}x{w} is larger than the token grid {H}x{W}: there would be '
            f'more clusters than tokens along an axis. Use a cluster grid of at most {H}x{W} '
            f'(or a smaller num_clusters), or a larger input image.')
    return h, w


def num_candidates(cluster_grid: tuple[int, int], window: int) -> int:
    """Number of candidate centres per token: ``min(window, h) * min(window, w)``."""
    h, w = cluster_grid
    return min(window, h) * min(window, w)


def _check_window(window: int) -> None:
    if not isinstance(window, int) or isinstance(window, bool) or window < 1 or window % 2 == 0:
        raise ValueError(f'window must be a positive odd int (e.g. 5 for 5x5 candidate '
                         f'centres around each token), got {window!r}.')


def token_cells(token_grid: tuple[int, int], cluster_grid: tuple[int, int],
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial cell ``(cy, cx)`` of every token, each a ``(N,)`` long tensor."""
    H, W = _pair(tuple(token_grid), 'token_grid')
    h, w = _pair(tuple(cluster_grid), 'cluster_grid')
    ys = torch.arange(H, device=device) * h // H
    xs = torch.arange(W, device=device) * w // W
    return ys[:, None].expand(H, W).reshape(-1), xs[None, :].expand(H, W).reshape(-1)


def _window_start(c: torch.Tensor, size: int, extent: int, window: int) -> torch.Tensor:
    return (c - window // 2).clamp(0, extent - size)


def candidate_index(token_grid: tuple[int, int], cluster_grid: tuple[int, int], window: int,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, K)`` indices (row-major in the cluster grid) of each token's candidates in
    the window shifted inwards (for ``'cut'`` see :func:`candidate_mask`).

    Column ``k`` is the offset ``(k // kw, k % kw)`` inside the token's (shifted) window.
    """
    _check_window(window)
    h, w = cluster_grid
    kh, kw = min(window, h), min(window, w)
    cy, cx = token_cells(token_grid, cluster_grid, device)
    yy = _window_start(cy, kh, h, window)[:, None, None] + torch.arange(kh, device=device)[:, None]
    xx = _window_start(cx, kw, w, window)[:, None, None] + torch.arange(kw, device=device)
    return (yy * w + xx).reshape(-1, kh * kw)


def candidate_mask(token_grid: tuple[int, int], cluster_grid: tuple[int, int], window: int,
                   index: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` bool: candidate ``index[n, k]`` lies in the token's window *cut* at the
    border, ``|d_row| <= window // 2`` and ``|d_col| <= window // 2`` from its cell."""
    w = cluster_grid[1]
    r = window // 2
    cy, cx = token_cells(token_grid, cluster_grid, index.device)
    return ((index // w - cy[:, None]).abs() <= r) & ((index % w - cx[:, None]).abs() <= r)


@dataclass
class LocalPlan:
    """Index tables of the local token-candidate computation (depends on grids only).

    Attributes:
        index: ``(N, K)`` candidate centres of each token (see :func:`candidate_index`).
        tile_tokens: ``(T, S)`` token indices of each tile, padded with ``N``.
        tile_centers: ``(T, R)`` centre indices of each tile's reachable block.
        flat: ``(N, K)`` position of each (token, candidate) pair in the flattened
            ``(T, S, R)`` per-tile product.
        token_slot: ``(N,)`` position of each token in the flattened ``(T, S)`` table.
        valid: ``(N, K)`` bool mask of the cut window (``candidate_window='cut'``), or
            ``None`` when every entry of ``index`` is a candidate (``'shifted'``).
    """
    token_grid: tuple[int, int]
    cluster_grid: tuple[int, int]
    window: int
    index: torch.Tensor
    tile_tokens: torch.Tensor
    tile_centers: torch.Tensor
    flat: torch.Tensor
    token_slot: torch.Tensor
    valid: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return self.index.shape[0]

    @property
    def num_clusters(self) -> int:
        return self.cluster_grid[0] * self.cluster_grid[1]


def _axis_blocks(extent: int, size: int, window: int, tile: int,
                 device) -> tuple[torch.Tensor, int]:
    """Start of the reachable block of cells, per tile along one axis, and its length."""
    n_tiles = math.ceil(extent / tile)
    first = torch.arange(n_tiles, device=device) * tile
    last = (first + tile - 1).clamp(max=extent - 1)
    lo = _window_start(first, size, extent, window)
    hi = _window_start(last, size, extent, window) + size - 1
    length = min(tile + size - 1, extent)
    start = torch.minimum(lo, torch.full_like(lo, extent - length))
    assert bool((hi < start + length).all())
    return start, length


def build_plan(token_grid: tuple[int, int], cluster_grid: tuple[int, int], window: int,
               device: torch.device | str | None = None, tile: int = 4,
               candidate_window: str = 'cut') -> LocalPlan:
    """Index tables for the local computation between ``token_grid`` and ``cluster_grid``.
    ``candidate_window``: ``'cut'`` (official) or ``'shifted'`` (see the module doc).

    The tables depend on these integers only: they are built on the host (no device
    synchronisation), copied to ``device`` once and cached per (grids, window, device,
    tile, candidate window), so after the first call a forward builds nothing. They are
    built outside inference mode, so one cached plan serves inference and training; they
    are read-only index tensors, never modified in place.
    """
    _check_window(window)
    check_candidate_window(candidate_window)
    H, W = _pair(tuple(token_grid), 'token_grid')
    h, w = _pair(tuple(cluster_grid), 'cluster_grid')
    dev = None if device is None else torch.device(device)
    return _cached_plan((H, W), (h, w), int(window), dev, int(tile), candidate_window)


@functools.lru_cache(maxsize=64)
def _cached_plan(token_grid: tuple[int, int], cluster_grid: tuple[int, int], window: int,
                 device: torch.device | None, tile: int, candidate_window: str) -> LocalPlan:
    with torch.inference_mode(False), torch.no_grad():
        plan = _build_plan(token_grid, cluster_grid, window, torch.device('cpu'), tile,
                           candidate_window)
        if device is None or device.type == 'cpu':
            return plan
        return replace(plan, **{f.name: getattr(plan, f.name).to(device) for f in fields(plan)
                                if isinstance(getattr(plan, f.name), torch.Tensor)})


def _build_plan(token_grid: tuple[int, int], cluster_grid: tuple[int, int], window: int,
                device: torch.device, tile: int, candidate_window: str) -> LocalPlan:
    H, W = token_grid
    h, w = cluster_grid
    N = H * W
    kh, kw = min(window, h), min(window, w)
    index = candidate_index(token_grid, cluster_grid, window, device)
    cy, cx = token_cells(token_grid, cluster_grid, device)
    tile_h, tile_w = min(tile, h), min(tile, w)
    sy, rh = _axis_blocks(h, kh, window, tile_h, device)
    sx, rw = _axis_blocks(w, kw, window, tile_w, device)
    nty, ntx = sy.numel(), sx.numel()
    T = nty * ntx
    ty, tx = cy // tile_h, cx // tile_w
    tile_id = ty * ntx + tx  # (N,)
    # slot of each token inside its tile (tokens are visited in row-major order)
    order = torch.argsort(tile_id, stable=True)
    counts = torch.bincount(tile_id, minlength=T)
    S = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty(N, dtype=torch.long, device=device)
    slot[order] = torch.arange(N, device=device) - starts[tile_id[order]]
    tile_tokens = torch.full((T, S), N, dtype=torch.long, device=device)
    tile_tokens[tile_id, slot] = torch.arange(N, device=device)
    # reachable centres of each tile: an rh x rw block of cells
    by = sy[:, None, None, None] + torch.arange(rh, device=device)[:, None]
    bx = sx[None, :, None, None] + torch.arange(rw, device=device)
    tile_centers = (by * w + bx).reshape(T, rh * rw)
    # column of each candidate in its tile's block
    cand_y, cand_x = index // w, index % w
    col = (cand_y - sy[ty][:, None]) * rw + (cand_x - sx[tx][:, None])
    R = rh * rw
    token_slot = tile_id * S + slot
    flat = token_slot[:, None] * R + col
    valid = None
    if candidate_window == 'cut':
        valid = candidate_mask((H, W), (h, w), window, index)
        if bool(valid.all()):  # the cluster grid fits in the window: nothing is cut
            valid = None
    return LocalPlan(token_grid=(H, W), cluster_grid=(h, w), window=window, index=index,
                     tile_tokens=tile_tokens, tile_centers=tile_centers, flat=flat,
                     token_slot=token_slot, valid=valid)


def tile_tokens(plan: LocalPlan, x: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, N, D)`` laid out per tile, ``(B, T, S, D)`` (zero padding). Computed
    once and passed to the functions below when ``x`` is reused over iterations."""
    return _tile_gather(x, plan.tile_tokens, pad=True)


def _tile_gather(values: torch.Tensor, table: torch.Tensor, pad: bool) -> torch.Tensor:
    """``values`` (B, L, D) -> (B, T, S, D) gathered by ``table`` (T, S)."""
    if pad:
        values = torch.cat([values, values.new_zeros(values.shape[0], 1, values.shape[2])], 1)
    T, S = table.shape
    # explicit sizes (no -1): an empty batch (B = 0) reshapes too
    return values.index_select(1, table.reshape(-1)).reshape(values.shape[0], T, S,
                                                             values.shape[2])


def local_sq_distances(plan: LocalPlan, x: torch.Tensor, centers: torch.Tensor,
                       xt: torch.Tensor | None = None,
                       xx: torch.Tensor | None = None) -> torch.Tensor:
    """Squared L2 distances ``(B, N, K)`` between tokens ``x`` (B, N, C) and their
    candidate ``centers`` (B, M, C), as ``|x|^2 + |c|^2 - 2 x.c`` (clamped at 0).
    ``xt = tile_tokens(plan, x)`` and ``xx = |x|^2`` may be passed when precomputed."""
    B = x.shape[0]
    if xt is None:
        xt = tile_tokens(plan, x)                                  # (B, T, S, C)
    ct = _tile_gather(centers, plan.tile_centers, pad=False)       # (B, T, R, C)
    dots = torch.matmul(xt, ct.transpose(-1, -2)).flatten(1)     # (B, T*S*R)
    if xx is None:
        xx = (x * x).sum(-1)                                       # (B, N)
    cc = (centers * centers).sum(-1)                               # (B, M)
    xc = dots.index_select(1, plan.flat.reshape(-1)).reshape(B, *plan.flat.shape)
    d = xx[..., None] + cc.index_select(1, plan.index.reshape(-1)).reshape(xc.shape) - 2 * xc
    return d.clamp_min_(0)


def _tile_weights(plan: LocalPlan, weight: torch.Tensor) -> torch.Tensor:
    """Scatter ``(B, N, K)`` candidate weights into the ``(B, T, S, R)`` tile layout."""
    B = weight.shape[0]
    T, S = plan.tile_tokens.shape
    R = plan.tile_centers.shape[1]
    wt = weight.new_zeros(B, T * S * R)
    wt.index_copy_(1, plan.flat.reshape(-1), weight.flatten(1))
    return wt.reshape(B, T, S, R)


def local_scatter_mean(plan: LocalPlan, values: torch.Tensor, weight: torch.Tensor,
                       fallback: torch.Tensor | None,
                       vt: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted means ``(B, M, D)``: ``sum_{n,k: index[n,k]=m} w[n,k] v[n] / sum w``.

    ``values`` (B, N, D), ``weight`` (B, N, K). With ``fallback=None`` (official) the
    denominator is clamped at ``1e-16``, so a centre that receives no weight becomes
    the zero vector; otherwise centres whose total weight is below ``1e-12`` keep
    ``fallback`` (B, M, D). ``vt = tile_tokens(plan, values)`` may be passed when
    precomputed.
    """
    B, _, D = values.shape
    wt = _tile_weights(plan, weight)                                # (B, T, S, R)
    if vt is None:
        vt = tile_tokens(plan, values)                              # (B, T, S, D)
    num_t = torch.matmul(wt.transpose(-1, -2), vt)                  # (B, T, R, D)
    den_t = wt.sum(2)                                               # (B, T, R)
    M = plan.num_clusters
    idx = plan.tile_centers.reshape(-1)
    num = values.new_zeros(B, M, D).index_add_(1, idx, num_t.flatten(1, 2))
    den = values.new_zeros(B, M).index_add_(1, idx, den_t.flatten(1))
    if fallback is None:
        return num / den.clamp_min(1e-16)[..., None]
    ok = den > 1e-12
    mean = num.div_(den.clamp_min(1e-12)[..., None])
    # always the select: an ``if ok.all()`` shortcut would wait for the device
    return torch.where(ok[..., None], mean, fallback)


def local_combine(plan: LocalPlan, weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``(B, N, D)``: token ``n`` = ``sum_k weight[n, k] * features[index[n, k]]``
    for ``weight`` (B, N, K) and per-centre ``features`` (B, M, D)."""
    B, _, D = features.shape
    wt = _tile_weights(plan, weight)                                # (B, T, S, R)
    ft = _tile_gather(features, plan.tile_centers, pad=False)       # (B, T, R, D)
    out = torch.matmul(wt, ft).flatten(1, 2)                        # (B, T*S, D)
    return out.index_select(1, plan.token_slot)
