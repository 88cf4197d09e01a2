"""2D bipartite soft matching, size-weighted merging and unmerging (pure PyTorch).

The ToMe rule (Bolya et al. 2023, "Token Merging: Your ViT but Faster"): split the tokens
into a source set A and a destination set B, give every A token its most similar B token
(cosine similarity of a metric, e.g. the attention keys averaged over heads), keep the
``r`` most similar edges and merge each chosen A token into its B match by a
size-weighted average; sizes start at 1 and add up. The 2D choice of B is tomesd's
(Bolya & Hoffman 2023): one destination per ``sy x sx`` cell of the token grid (its
first position, or a random one drawn from a ``torch.Generator``); tokens in rows /
columns past the last whole cell are sources.

Bookkeeping: ``holder`` keeps, for every original token, the index of the current token
that holds it; unmerging is one gather (every original position reads its holder, which
is tomesd's ``unmerge`` after one step and its composition after several).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ['Matching', 'grid_destinations', 'bipartite_soft_matching', 'merge_tokens',
           'update_holder', 'unmerge_tokens']


def grid_destinations(h: int, w: int, stride: tuple[int, int],
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major indices ``(dst, src)`` of an ``h x w`` token grid: one destination per
    whole ``sy x sx`` cell (its first position, or a random one with ``generator``), the
    rest sources; both ascending."""
    sy, sx = stride
    hs, ws = h // sy, w // sx
    if hs == 0 or ws == 0:
        raise ValueError(f'A {h}x{w} token grid holds no whole {sy}x{sx} cell, so token '
                         f'merging has no destination token; use a stride of at most '
                         f'({h}, {w}).')
    if generator is None:
        off = torch.zeros(hs, ws, dtype=torch.long)
    else:
        off = torch.randint(sy * sx, (hs, ws), generator=generator, device=generator.device)
        off = off.cpu()
    ys = torch.arange(hs)[:, None] * sy + off // sx
    xs = torch.arange(ws)[None, :] * sx + off % sx
    dst = (ys * w + xs).flatten().sort().values
    is_dst = torch.zeros(h * w, dtype=torch.bool)
    is_dst[dst] = True
    src = torch.nonzero(~is_dst).flatten()
    return dst.to(device), src.to(device)


@dataclass
class Matching:
    """One matching step over a current sequence of ``n`` tokens.

    Attributes:
        a_idx: ``(1 | B, na)`` sequence indices of the sources A.
        b_idx: ``(1 | B, nb)`` sequence indices of the destinations B.
        src: ``(B, r)`` indices into A of the merged sources.
        dst: ``(B, r)`` indices into B of their matches.
        unm: ``(B, na - r)`` indices into A of the kept sources (ascending).
    """
    a_idx: torch.Tensor
    b_idx: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    unm: torch.Tensor

    @property
    def r(self) -> int:
        return self.src.shape[1]


def _rows(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[b, idx[b]]`` for ``t`` (B, n, C) and ``idx`` (1 | B, m)."""
    B, _, C = t.shape
    return t.gather(1, idx.expand(B, -1)[..., None].expand(B, idx.shape[1], C))


@torch.no_grad()
def bipartite_soft_matching(metric: torch.Tensor, a_idx: torch.Tensor, b_idx: torch.Tensor,
                            r: int) -> Matching:
    """Match the sources ``a_idx`` of ``metric`` (B, n, D) to the destinations ``b_idx``
    by cosine similarity and keep the ``r`` most similar edges (ToMe's rule)."""
    na = a_idx.shape[-1]
    if not 0 <= r <= na:
        raise ValueError(f'Cannot merge r={r} tokens: only {na} source tokens are left; '
                         f'use r <= {na}.')
    m = F.normalize(metric.float(), dim=-1)
    scores = _rows(m, a_idx) @ _rows(m, b_idx).transpose(1, 2)  # (B, na, nb)
    node_max, node_idx = scores.max(dim=-1)
    edge = node_max.argsort(dim=-1, descending=True)
    src = edge[:, :r]
    unm = edge[:, r:].sort(dim=-1).values
    dst = node_idx.gather(1, src)
    return Matching(a_idx, b_idx, src, dst, unm)


def merge_tokens(m: Matching, sizes: torch.Tensor, *values: torch.Tensor
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Merge each matched source into its destination by a size-weighted mean.

    Args:
        m: the matching.
        sizes: ``(B, n, 1)`` how many original tokens each current token holds (0 for a
            padding token: it adds nothing where it merges, and a padding destination
            that receives nothing stays 0).
        *values: ``(B, n, C)`` tensors to merge alike (tokens, positions, ...).

    Returns:
        ``(new sizes, merged values)``; the new sequence is ``[B | kept A]`` (the
        destinations in ``b_idx`` order, then the kept sources in sequence order).
    """
    B = sizes.shape[0]
    src_idx, unm_idx = m.src[..., None], m.unm[..., None]
    sa, sb = _rows(sizes, m.a_idx), _rows(sizes, m.b_idx)
    s_src = sa.gather(1, src_idx)
    dst = m.dst[..., None]
    new_sb = sb.scatter_add(1, dst, s_src)
    new_sizes = torch.cat([new_sb, sa.gather(1, unm_idx)], dim=1)
    out = []
    for v in values:
        C = v.shape[-1]
        a, b = _rows(v, m.a_idx), _rows(v, m.b_idx)
        w_src = a.gather(1, src_idx.expand(B, -1, C)) * s_src.to(v.dtype)
        num = (b * sb.to(v.dtype)).scatter_add(1, dst.expand(B, -1, C), w_src)
        merged = num / torch.where(new_sb > 0, new_sb, 1).to(v.dtype)
        out.append(torch.cat([merged, a.gather(1, unm_idx.expand(B, -1, C))], dim=1))
    return new_sizes, out


def update_holder(holder: torch.Tensor, m: Matching, n: int) -> torch.Tensor:
    """The holder map after the merge ``m`` of a sequence of ``n`` tokens: ``holder``
    (B, N_orig) indexes the old sequence, the result the merged one (``[B | kept A]``)."""
    B = holder.shape[0]
    nb = m.b_idx.shape[-1]
    dev = holder.device
    a_idx = m.a_idx.expand(B, -1)
    mapping = torch.empty(B, n, dtype=torch.long, device=dev)
    mapping.scatter_(1, m.b_idx.expand(B, -1), torch.arange(nb, device=dev).expand(B, -1))
    kept = m.unm.shape[1]
    mapping.scatter_(1, a_idx.gather(1, m.unm),
                     torch.arange(nb, nb + kept, device=dev).expand(B, -1))
    mapping.scatter_(1, a_idx.gather(1, m.src), m.dst)
    return mapping.gather(1, holder)


def unmerge_tokens(x: torch.Tensor, holder: torch.Tensor) -> torch.Tensor:
    """``(B, N_orig, C)``: every original token reads the current token that holds it."""
    B, _, C = x.shape
    return x.gather(1, holder[..., None].expand(B, holder.shape[1], C))
