"""Expedite plug-in logic shared by every expedited backbone (pure PyTorch).

One place for what all expedited ViTs do (mmwinwin's RoPE ViT here, mmseg's
``VisionTransformer`` in ``mmwinwin/models/expedite/vit.py``, windowed
ViTs / Swin elsewhere):

* :class:`ExpediteSettings` -- where and how to cluster: after layer ``alpha`` (counted
  from 1: layers ``1..alpha`` see all tokens, layers ``alpha+1..L`` see the clusters),
  the cluster grid, ``iters``, ``window``, ``temperature``, ``k``, and where to rebuild
  the full token grid (``reconstruct='backbone'``, default, or ``'logits'`` after a
  head that keeps the token grid, e.g. Segmenter's mask transformer);
* :func:`cluster_sequence` -- cluster the patch part of a ``[prefix | patches]`` token
  sequence (a cls token is set aside and put back in front);
* :class:`ExpeditePolicy` -- the token policy of the one block loop
  (``layers/vit/block_loop.py``) that clusters after block alpha and rebuilds outputs;
* :func:`expedited_forward_tokens` -- the expedited forward of a
  :class:`~mmwinwin.layers.RoPEVisionTransformer` (clusters get the assignment-weighted
  mean ``(y, x)`` of their tokens as RoPE positions).

``alpha == num_layers`` leaves no layer to run on clusters: nothing is clustered and
the outputs are exactly the plain model's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch

from ..settings import check_settings_dict
from ..vit.block_loop import BlockLoopState, TokenPolicy, run_blocks
from .clustering import ClusterResult, cluster_tokens
from .local_neighbors import num_candidates, resolve_cluster_grid
from .reconstruction import ReconstructionWeights, reconstruct_tokens, reconstruction_weights

__all__ = ['ExpeditePolicy', 'ExpediteSettings', 'check_finite_tokens', 'cluster_sequence',
           'expedited_forward_tokens', 'normalize_indices', 'PREVIOUS_LOCAL', 'OPTIONS']

_PLACEMENTS = ('backbone', 'logits')

# operator options: the first value of each is the official operator
_OPTIONS = {
    'candidate_window': ('cut', 'shifted'),
    'reconstruction_topk': ('global', 'local'),
    'empty_cluster': ('zero', 'keep'),
    'partition_padding': ('zeros', 'replicate'),
    'bias_resize': ('bilinear', 'bicubic-aligned'),
}

OPTIONS = _OPTIONS

#: mmwinwin's former (local) operators, kept as named options
PREVIOUS_LOCAL = dict(candidate_window='shifted', reconstruction_topk='local',
                      empty_cluster='keep', partition_padding='replicate',
                      bias_resize='bicubic-aligned')


@dataclass
class ExpediteSettings:
    """Hyper-parameters of Expedite (defaults: Segmenter ViT-L/16 ADE20K 640).

    Give exactly one of ``cluster_grid`` (``(h, w)`` or int), ``num_clusters`` (a count,
    the grid follows the token grid's aspect) or ``cluster_scale`` (a fraction of the
    token grid per axis, for inputs of varying size, e.g. 0.7 -> 40x40 tokens to 28x28).

    The operators default to the official ones (``docs/expedite.md``); each departure is
    a named option: ``candidate_window='shifted'`` (border windows shifted inwards instead
    of cut), ``reconstruction_topk='local'`` (k nearest among the clustering candidates
    instead of over all centres), ``empty_cluster='keep'`` (an empty cluster keeps its
    previous centre instead of zero), and for partitioned models (Swin)
    ``partition_padding='replicate'`` (edge tokens instead of zeros) and
    ``bias_resize='bicubic-aligned'`` (instead of bilinear, ``align_corners=False``).
    """
    alpha: int = 10
    cluster_grid: int | tuple[int, int] | None = None
    num_clusters: int | None = None
    cluster_scale: float | None = None
    iters: int = 5
    window: int = 5
    temperature: float = 0.02
    k: int = 20
    recon_temperature: float | None = None
    norm: str = 'l2'
    reconstruct: str = 'backbone'
    candidate_window: str = 'cut'
    reconstruction_topk: str = 'global'
    empty_cluster: str = 'zero'
    partition_padding: str = 'zeros'
    bias_resize: str = 'bilinear'

    @classmethod
    def build(cls, cfg: 'ExpediteSettings | dict | None') -> 'ExpediteSettings | None':
        if cfg is None or isinstance(cfg, ExpediteSettings):
            return cfg
        check_settings_dict(cfg, cls.__dataclass_fields__, 'expedite')
        cfg = dict(cfg)
        if isinstance(cfg.get('cluster_grid'), list):
            cfg['cluster_grid'] = tuple(cfg['cluster_grid'])
        return cls(**cfg)

    def __post_init__(self) -> None:
        for name in ('alpha', 'iters', 'window', 'k', 'num_clusters'):  # True is not 1
            if isinstance(getattr(self, name), bool):
                raise TypeError(f'Expedite {name} must be an int, got {getattr(self, name)!r}.')
        grid = self.cluster_grid
        if isinstance(grid, bool) or (isinstance(grid, (tuple, list))
                                      and any(isinstance(v, bool) for v in grid)):
            raise TypeError(f'Expedite cluster_grid must be an int or (h, w) ints, got {grid!r}.')
        given = [n for n in ('cluster_grid', 'num_clusters', 'cluster_scale')
                 if getattr(self, n) is not None]
        if len(given) == 0:
            self.cluster_grid = (28, 28)
        elif len(given) > 1:
            raise ValueError(f'Give only one of cluster_grid, num_clusters, cluster_scale; '
                             f'got {given}.')
        if self.cluster_scale is not None and not 0 < self.cluster_scale <= 1:
            raise ValueError(f'cluster_scale must be in (0, 1], got {self.cluster_scale}.')
        if self.reconstruct not in _PLACEMENTS:
            raise ValueError(f'reconstruct must be one of {_PLACEMENTS}, got '
                             f'{self.reconstruct!r}.')
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f'k must be a positive int, got {self.k!r}.')
        if not isinstance(self.iters, int) or self.iters < 0:
            raise ValueError(f'iters must be an int >= 0, got {self.iters!r}.')
        if not self.temperature > 0:
            raise ValueError(f'temperature must be > 0, got {self.temperature!r}.')
        if not isinstance(self.window, int) or self.window < 1 or self.window % 2 == 0:
            raise ValueError(f'window must be a positive odd int, got {self.window!r}.')
        for name, allowed in _OPTIONS.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f'Expedite {name} must be one of {allowed} (first = official), '
                                 f'got {getattr(self, name)!r}.')
        if isinstance(self.cluster_grid, int):
            self.cluster_grid = (self.cluster_grid, self.cluster_grid)
        if isinstance(self.cluster_grid, tuple):
            h, w = self.cluster_grid
            if self.k > h * w:
                raise ValueError(f'k={self.k} is larger than the {h}x{w} = {h * w} clusters. '
                                 f'Use k <= {h * w}.')
            if (self.reconstruction_topk == 'local'
                    and self.k > num_candidates((h, w), self.window)):
                raise ValueError(
                    f'k={self.k} is larger than the {num_candidates((h, w), self.window)} '
                    f'local candidate centres of each token (window {self.window}). Use '
                    f"k <= window**2, a larger window or reconstruction_topk='global'.")
        if self.num_clusters is not None and self.k > self.num_clusters:
            raise ValueError(f'k={self.k} is larger than num_clusters={self.num_clusters}.')

    @classmethod
    def previous_local(cls, **kwargs) -> 'ExpediteSettings':
        """Settings with every operator option at mmwinwin's former local rules."""
        return cls(**{**PREVIOUS_LOCAL, **kwargs})

    def check_alpha(self, num_layers: int) -> None:
        """Raise unless ``1 <= alpha <= num_layers``."""
        if not isinstance(self.alpha, int) or not 1 <= self.alpha <= num_layers:
            raise ValueError(
                f'Expedite alpha={self.alpha!r} is outside the network: clustering happens '
                f'after layer alpha, counted from 1, so alpha must be in 1..{num_layers} for '
                f'this {num_layers}-layer ViT ({num_layers} = no layer runs on clusters).')

    def grid_for(self, token_grid: tuple[int, int]) -> tuple[int, int]:
        """Cluster grid ``(h, w)`` for a token grid (validated)."""
        if self.cluster_scale is not None:
            H, W = token_grid
            grid = (max(1, round(H * self.cluster_scale)), max(1, round(W * self.cluster_scale)))
            return resolve_cluster_grid(token_grid, cluster_grid=grid)
        return resolve_cluster_grid(token_grid, self.cluster_grid, self.num_clusters)

    def to_dict(self) -> dict:
        return asdict(self)


def check_finite_tokens(x: torch.Tensor, where: str = 'Expedite clustering') -> None:
    """Raise a ``ValueError`` when ``x`` holds NaN or inf: one such token would make half
    the cluster centres and every reconstructed token NaN.

    Cheap on the good path: one sum (accumulated in fp32, so fp16 tokens do not overflow
    it) and one host sync per clustering call, at the plug-in entry, never in the inner
    loops. A NaN or inf element makes the sum NaN or inf, so a finite sum proves every
    element finite; only a non-finite sum (bad tokens, or finite values so large that
    their sum overflows fp32) pays for the element-wise test, which decides. The sync is
    kept on purpose: a clear error is worth one wait for the device per forward (on CPU
    it costs nothing), where NaN clusters would spread silently into the output."""
    if bool(torch.isfinite(torch.sum(x, dtype=torch.float32))):
        return
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f'{where}: the tokens hold {bad} non-finite values (NaN or inf) of {x.numel()} '
            f'(shape {tuple(x.shape)}). They come from the input image or an earlier layer '
            '(e.g. fp16 overflow): check the input for NaN / inf, or run the layers before '
            'clustering in fp32.')


def cluster_sequence(x: torch.Tensor, num_prefix_tokens: int, token_grid: tuple[int, int],
                     settings: ExpediteSettings, pos: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, ClusterResult,
                                ReconstructionWeights]:
    """Cluster ``x = [prefix | patches]`` (B, p + H*W, C).

    Returns ``([prefix | clusters], cluster positions or None, the cluster result,
    the reconstruction weights)``. The weights use the patch tokens of ``x`` (layer
    alpha) and the centres right after clustering, as in the paper.
    """
    p = num_prefix_tokens
    patches = x[:, p:]
    check_finite_tokens(patches)
    res = cluster_tokens(patches, token_grid, cluster_grid=settings.grid_for(token_grid),
                         iters=settings.iters, window=settings.window,
                         temperature=settings.temperature, pos=pos,
                         candidate_window=settings.candidate_window,
                         empty_cluster=settings.empty_cluster)
    weights = reconstruction_weights(patches, res, k=settings.k,
                                     temperature=settings.recon_temperature, norm=settings.norm,
                                     topk=settings.reconstruction_topk)
    return torch.cat([x[:, :p], res.centers], dim=1), res.pos, res, weights


class ExpeditePolicy(TokenPolicy):
    """Token policy of Expedite: after block ``alpha`` (counted from 1) the patch tokens
    are clustered (:func:`cluster_sequence`) and the loop carries ``[prefix | clusters]``
    at the clusters' weighted-mean positions; outputs of later blocks are rebuilt on the
    full ``grid_size`` grid (``reconstruct=True``) or left on the cluster grid. After the
    forward, ``weights`` holds the reconstruction weights (``None`` if nothing was
    clustered)."""

    def __init__(self, settings: ExpediteSettings, grid_size: tuple[int, int],
                 reconstruct: bool = True) -> None:
        self.settings = settings
        self.grid_size = tuple(grid_size)
        self.reconstruct = reconstruct
        self.weights: ReconstructionWeights | None = None

    def output(self, index: int, state: BlockLoopState) -> torch.Tensor:
        out = state.vit.output_tokens(index, state.x)
        if self.reconstruct and self.weights is not None:
            out = reconstruct_tokens(out, self.weights)
        return out

    def after_block(self, index: int, state: BlockLoopState) -> None:
        s = self.settings
        if index == s.alpha - 1 and s.alpha < state.vit.num_layers:
            state.x, state.pos, _, self.weights = cluster_sequence(
                state.x, state.vit.num_prefix_tokens, self.grid_size, s, pos=state.pos)


def expedited_forward_tokens(vit, tokens: torch.Tensor, pos: torch.Tensor,
                             grid_size: tuple[int, int], settings: ExpediteSettings,
                             reconstruct: bool = True
                             ) -> tuple[list[torch.Tensor], ReconstructionWeights | None]:
    """Expedited ``forward_tokens`` of a :class:`~mmwinwin.layers.RoPEVisionTransformer`.

    Args:
        vit: the (unchanged) ViT.
        tokens: ``(B, H*W, C)`` patch embeddings of a full ``grid_size`` grid.
        pos: ``(H*W, 2)`` or ``(B, H*W, 2)`` token positions.
        settings: the Expedite settings.
        reconstruct: rebuild the outputs of layers after alpha on the full grid (else they
            stay on the cluster grid and the caller applies the returned weights).

    Returns:
        ``(outputs for out_indices as (B, n, C), reconstruction weights or None)``.
    """
    settings.check_alpha(vit.num_layers)
    pos = pos.to(device=tokens.device)
    x = vit.prepare_tokens(tokens, pos, grid_size)
    if getattr(vit, 'rope_type', 'axial') != 'axial':
        # the family's RoPE coordinates (DINOv3: normalised by the full grid); affine, so
        # the clusters' weighted-mean positions below stay exact in them
        pos = vit.rope_positions(pos, grid_size)
    policy = ExpeditePolicy(settings, grid_size, reconstruct=reconstruct)
    outs = run_blocks(vit, x, pos, policy)
    return outs, policy.weights


def normalize_indices(indices: int | Sequence[int], num_layers: int) -> list[int]:
    """Non-negative layer indices (``-1`` = last)."""
    idx = [indices] if isinstance(indices, int) else list(indices)
    return [i + num_layers if i < 0 else i for i in idx]
