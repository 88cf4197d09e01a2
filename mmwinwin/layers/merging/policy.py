"""Token merging (ToMe / tomesd) as a token policy of the one block loop (pure PyTorch).

* :class:`TokenMergingSettings` -- ``alpha`` counted from 1 as in Expedite (blocks
  ``1..alpha`` see all tokens), ``r`` tokens merged before each block after alpha,
  the destination ``stride`` (tomesd's ``sy x sx`` cells), proportional attention and
  the similarity metric.
* :class:`TokenMergingPolicy` -- merges at the seam before each block after alpha,
  passes ``log(size)`` as an additive float attention bias (``state.attn_mask``, ToMe's
  proportional attention ``softmax(QK^T / sqrt(d) + log s)``), moves the RoPE positions
  to the size-weighted mean ``(y, x)`` of the merged tokens (as Expedite's clusters take
  the assignment-weighted mean) and unmerges every output after alpha back to the full
  ``(h, w)`` grid (prefix tokens are never merged and keep size 1).
* :func:`merged_forward_tokens` -- that forward for a
  :class:`~mmwinwin.layers.RoPEVisionTransformer`.

Faithful defaults and where the papers are silent (mmwinwin's choices):

* metric ``'keys'`` (ToMe): the keys of the block that just ran, taken from its qkv
  projection on its input (before RoPE), averaged over heads -- the same keys ToMe
  uses; ToMe merges between that block's attention and MLP, here the merge happens at
  the seam after the block. ``metric='tokens'`` is tomesd's hidden-state metric (the
  tokens entering the next block).
* the destination set: after the first merge the tokens no longer form a grid. The
  destinations are chosen once per forward on the ORIGINAL grid (one per ``stride``
  cell, its first position; ``dst='random'`` draws a position per cell from a
  generator seeded with ``seed``, tomesd's own default being random) and stay the
  destinations in every later merge; the sources of a later merge are the source tokens
  not yet merged. Destinations never merge into each other, so each step is tomesd's
  rule restricted to the remaining sources, the batch keeps equal lengths, and at most
  ``N - num_cells`` tokens can be merged in total (checked, with the fix named).
* proportional attention is on by default (ToMe); ``proportional_attention=False`` is
  plain attention over the merged tokens (tomesd's choice).
* ``r == 0`` or ``alpha == num_layers`` merges nothing: exactly the plain model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..settings import check_settings_dict
from ..vit.block_loop import BlockLoopState, TokenPolicy, run_blocks
from .matching import (bipartite_soft_matching, grid_destinations, merge_tokens, unmerge_tokens,
                       update_holder)

__all__ = ['TokenMergingSettings', 'TokenMergingPolicy', 'merged_forward_tokens',
           'MERGING_OPTIONS']

#: named options; the first value of each is the default
MERGING_OPTIONS = {'metric': ('keys', 'tokens'), 'dst': ('first', 'random')}


def _pair(v, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) and not isinstance(v, bool) else tuple(v) \
        if isinstance(v, (tuple, list)) else None
    if t is None or len(t) != 2 or any(isinstance(i, bool) or not isinstance(i, int) or i < 1
                                       for i in t):
        raise ValueError(f'{name} must be a positive int or a pair (sy, sx) of positive ints, '
                         f'got {v!r}.')
    return t


def _check_alpha(alpha, num_layers: int, what: str, after: str) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int) or not 1 <= alpha <= num_layers:
        raise ValueError(
            f'{what} alpha={alpha!r} is outside the network: {after} after layer alpha, '
            f'counted from 1, so alpha must be in 1..{num_layers} for this {num_layers}-layer '
            f'ViT ({num_layers} = the plain model).')


@dataclass
class TokenMergingSettings:
    """Hyper-parameters of token merging (see the module docstring for the rules).

    Args:
        r: tokens merged before each block after alpha (ToMe's ``r``, constant schedule).
        alpha: blocks ``1..alpha`` see all tokens (counted from 1, as Expedite's); ToMe
            merges from the first block on, ``alpha=1``.
        stride: ``(sy, sx)`` (or an int): one destination token per cell (tomesd's 2x2).
        proportional_attention: add ``log(size)`` to the attention logits (ToMe).
        metric: ``'keys'`` (ToMe: attention keys, mean over heads) or ``'tokens'``
            (tomesd: the hidden states).
        dst: ``'first'`` (each cell's first position, tomesd's ``no_rand=True``) or
            ``'random'`` (a position per cell drawn from a generator seeded by ``seed``,
            once per forward).
        seed: the seed of ``dst='random'``.
    """
    r: int
    alpha: int = 1
    stride: int | tuple[int, int] = (2, 2)
    proportional_attention: bool = True
    metric: str = 'keys'
    dst: str = 'first'
    seed: int = 0

    @classmethod
    def build(cls, cfg: 'TokenMergingSettings | dict | None'
              ) -> 'TokenMergingSettings | None':
        if cfg is None or isinstance(cfg, TokenMergingSettings):
            return cfg
        check_settings_dict(cfg, cls.__dataclass_fields__, 'token_merging')
        if 'r' not in cfg:
            raise ValueError('token_merging needs r, the number of tokens merged before each '
                             'block after alpha, e.g. token_merging=dict(alpha=1, r=8).')
        return cls(**cfg)

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 0:
            raise ValueError(f'token_merging r must be an int >= 0 (tokens merged before each '
                             f'block after alpha), got {self.r!r}.')
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int) or self.alpha < 1:
            raise ValueError(f'token_merging alpha must be an int >= 1 (blocks 1..alpha see '
                             f'all tokens), got {self.alpha!r}.')
        self.stride = _pair(self.stride, 'token_merging stride')
        if not isinstance(self.proportional_attention, bool):
            raise ValueError(f'proportional_attention must be True or False, got '
                             f'{self.proportional_attention!r}.')
        for name, allowed in MERGING_OPTIONS.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f'token_merging {name} must be one of {allowed} (first = '
                                 f'default), got {getattr(self, name)!r}.')

    def check_alpha(self, num_layers: int) -> None:
        """Raise unless ``1 <= alpha <= num_layers``."""
        _check_alpha(self.alpha, num_layers, 'token_merging', 'tokens are merged before each '
                     'block')

    def num_merges(self, num_layers: int) -> int:
        """How many merges a forward makes (one before each block after alpha)."""
        return 0 if self.r == 0 else num_layers - self.alpha

    def check_tokens(self, grid: tuple[int, int], num_layers: int) -> None:
        """Raise when the ``grid`` has too few source tokens for all the merges."""
        h, w = grid
        sy, sx = self.stride
        merges = self.num_merges(num_layers)
        if merges == 0:
            return
        cells = (h // sy) * (w // sx)
        if cells == 0:
            raise ValueError(f'token_merging stride {self.stride} has no whole cell in the '
                             f'{h}x{w} token grid; use a stride of at most ({h}, {w}).')
        sources = h * w - cells
        if self.r * merges > sources:
            raise ValueError(
                f'token_merging r={self.r} before each of the {merges} blocks after '
                f'alpha={self.alpha} merges {self.r * merges} tokens, but the {h}x{w} token '
                f'grid has only {sources} source tokens (one destination per {sy}x{sx} '
                f'cell stays). Use r <= {sources // merges}, a larger alpha, or a larger '
                f'stride.')

    def to_dict(self) -> dict:
        return asdict(self)


class TokenMergingPolicy(TokenPolicy):
    """Token policy of ToMe / tomesd on the one block loop (see the module docstring).

    After the forward, ``sizes`` (B, n, 1) and ``holder`` (B, h*w) describe the final
    merge (``None`` if nothing was merged). Subclasses change the layout the merges run
    in (``_start``, ``_run``, ``_layout``, ``_finish``; see the ViTDet one)."""

    def __init__(self, settings: TokenMergingSettings, grid_size: tuple[int, int]) -> None:
        self.settings = settings
        self.grid_size = tuple(grid_size)
        self.holder: torch.Tensor | None = None
        self.sizes: torch.Tensor | None = None
        self.num_dst = 0
        self._keys: torch.Tensor | None = None
        self._input: torch.Tensor | None = None
        self._padding = False  # whether the merge layout holds padding tokens (size 0)

    def _merging(self, index: int, vit) -> bool:
        """Whether a merge happens before block ``index`` (0-based)."""
        s = self.settings
        return s.r > 0 and s.alpha <= index < vit.num_layers

    # ----------------------------------------------------- layout (overridable)
    def _start(self, state: BlockLoopState) -> tuple[torch.Tensor, torch.Tensor,
                                                     torch.Tensor, tuple[int, int]]:
        """At the first merge: ``(patches, pos, sizes, local grid)`` in the merge layout
        (here the image's grid: ``(B, h*w, C)``, ``(B, h*w, 2)``, ones)."""
        p = state.vit.num_prefix_tokens
        x = state.x
        B = x.shape[0]
        pos = state.pos if state.pos.dim() == 3 else state.pos.expand(B, -1, -1)
        return x[:, p:], pos, torch.ones(B, x.shape[1] - p, 1, device=x.device), self.grid_size

    def _layout(self, t: torch.Tensor) -> torch.Tensor:
        """A ``(B, p + n, D)`` tensor of the loop (captured keys, tokens) in the merge
        layout, prefix included."""
        return t

    def _run(self, index: int, state: BlockLoopState) -> torch.Tensor:
        """Run block ``index`` on the (merged) tokens."""
        return super().block(index, state)

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        """An output unmerged to the merge layout -> ``(B, h*w, C)``."""
        return out

    # ----------------------------------------------------------------- metric
    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        if not (self.settings.metric == 'keys' and self._merging(index + 1, vit)):
            return self._run(index, state)
        attn = vit.blocks[index].attn
        self._keys = self._input = None

        def keep_input(module, args):
            self._input = args[0]

        def keep_qkv(module, args, out):
            self._keys = out

        handles = [attn.register_forward_pre_hook(keep_input)]
        if getattr(attn, 'qkv_bias_mask', None) is None:  # else qkv is not called as a module
            handles.append(attn.qkv.register_forward_hook(keep_qkv))
        try:
            return self._run(index, state)
        finally:
            for h in handles:
                h.remove()

    def _metric(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        p = vit.num_prefix_tokens
        if self.settings.metric == 'tokens':
            return self._layout(state.x)[:, p:]
        C = state.x.shape[-1]
        if self._keys is not None:
            k = self._keys[..., C:2 * C]
        else:  # DINOv3's masked key bias: the key bias is zero, recompute the key third
            attn = vit.blocks[index - 1].attn
            k = F.linear(self._input, attn.qkv.weight[C:2 * C])
        k = self._layout(k)
        B, N, _ = k.shape
        return k[:, p:].reshape(B, N - p, vit.num_heads, C // vit.num_heads).mean(2)

    # ------------------------------------------------------------------ merge
    def before_block(self, index: int, state: BlockLoopState) -> None:
        vit = state.vit
        if not self._merging(index, vit):
            return
        s = self.settings
        p = vit.num_prefix_tokens
        metric = self._metric(index, state)
        self._keys = self._input = None
        if self.holder is None:
            patches, pos, self.sizes, (h, w) = self._start(state)
            prefix = self._layout(state.x)[:, :p]
            B, n, dev = patches.shape[0], patches.shape[1], patches.device
            gen = None
            if s.dst == 'random':
                gen = torch.Generator().manual_seed(s.seed)
            dst, src = grid_destinations(h, w, s.stride, gen, dev)
            a_idx, b_idx = src[None], dst[None]
            self.num_dst = dst.numel()
            self.holder = torch.arange(n, device=dev).expand(B, n)
        else:
            prefix, patches, pos = state.x[:, :p], state.x[:, p:], state.pos
            n, dev = patches.shape[1], patches.device
            a_idx = torch.arange(self.num_dst, n, device=dev)[None]
            b_idx = torch.arange(self.num_dst, device=dev)[None]
        m = bipartite_soft_matching(metric, a_idx, b_idx, s.r)
        pos = pos if pos.is_floating_point() else pos.float()
        self.sizes, (patches, pos) = merge_tokens(m, self.sizes, patches, pos)
        self.holder = update_holder(self.holder, m, n)
        state.x = torch.cat([prefix, patches], dim=1)
        state.pos = pos
        sizes = torch.cat([self.sizes.new_ones(patches.shape[0], p, 1), self.sizes], 1)
        if s.proportional_attention:
            bias = sizes.log()  # log 0 = -inf: padding (size 0) is masked as keys
        elif self._padding:
            bias = torch.where(sizes > 0, 0.0, float('-inf'))
        else:
            bias = None
        if bias is not None:
            bias = bias.transpose(1, 2)[:, None].to(state.x.dtype)  # (B, 1, 1, p + n)
        state.attn_mask = bias

    def output(self, index: int, state: BlockLoopState) -> torch.Tensor:
        out = state.vit.output_tokens(index, state.x)
        return out if self.holder is None else self._finish(unmerge_tokens(out, self.holder))


def merged_forward_tokens(vit, tokens: torch.Tensor, pos: torch.Tensor,
                          grid_size: tuple[int, int], settings: TokenMergingSettings
                          ) -> list[torch.Tensor]:
    """Token-merging ``forward_tokens`` of a :class:`~mmwinwin.layers.RoPEVisionTransformer`
    over a full ``grid_size`` grid of patch ``tokens`` (B, h*w, C) at ``pos``; returns the
    ``out_indices`` outputs as ``(B, h*w, C)`` (unmerged)."""
    settings.check_alpha(vit.num_layers)
    settings.check_tokens(tuple(grid_size), vit.num_layers)
    pos = pos.to(device=tokens.device)
    x = vit.prepare_tokens(tokens, pos, grid_size)
    if getattr(vit, 'rope_type', 'axial') != 'axial':
        pos = vit.rope_positions(pos, grid_size)  # affine: weighted means stay exact
    return run_blocks(vit, x, pos, TokenMergingPolicy(settings, grid_size))
