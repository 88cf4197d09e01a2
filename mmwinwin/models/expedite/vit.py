"""Expedited ViT backbones: token clustering + reconstruction inside a trained ViT.

Each class subclasses the original backbone and adds no parameter, so state-dict keys
are unchanged and existing checkpoints load as they are. A config only changes the
backbone ``type`` and adds an ``expedite`` dict::

    model = dict(backbone=dict(
        type='ExpeditedMMSegViT',            # was 'VisionTransformer' (mmseg)
        expedite=dict(alpha=10, cluster_grid=(28, 28), iters=5, window=5,
                      temperature=0.02, k=20)))

``expedite=None`` gives the plain model. The settings are
:class:`mmwinwin.layers.ExpediteSettings`; the math lives in ``mmwinwin/layers``.

:class:`ExpeditedRoPEViT` also runs the other token policies of the one block loop in
place of Expedite (at most one of the three per model): ``token_merging=dict(alpha=1,
r=8)`` (ToMe / tomesd, :class:`mmwinwin.layers.TokenMergingSettings`) or
``token_pooling=dict(alpha=1, stride=2)`` (:class:`mmwinwin.layers.TokenPoolingSettings`).
"""
from __future__ import annotations

from functools import partial

import torch
from mmseg.models.backbones.vit import VisionTransformer
from torch import nn

from ...layers import (ExpediteSettings, TokenMergingSettings, TokenPoolingSettings,
                       expedited_forward_tokens, merged_forward_tokens, pooled_forward_tokens)
from ...layers.expedite.plugin import ExpeditePolicy
from ...layers.vit.block_loop import run_blocks
from ...layers.expedite.reconstruction import ReconstructionWeights, reconstruct_tokens
from ...registry import register
from ..vit.rope_vit import RoPEViT

__all__ = ['ExpeditedRoPEViT', 'ExpeditedMMSegViT', 'use_fused_attention',
           'build_token_policy_settings']


def build_token_policy_settings(expedite: dict | None, token_merging: dict | None,
                                token_pooling: dict | None, num_layers: int, where: str
                                ) -> tuple:
    """The settings of at most one token policy (``expedite``, ``token_merging`` or
    ``token_pooling``), each checked against a ``num_layers``-block ViT."""
    given = [n for n, v in (('expedite', expedite), ('token_merging', token_merging),
                            ('token_pooling', token_pooling)) if v is not None]
    if len(given) > 1:
        raise ValueError(f'{where} takes at most one token policy, got {given}: keep one of '
                         f'expedite / token_merging / token_pooling and set the others to None '
                         f'(leave them out).')
    settings = (ExpediteSettings.build(expedite), TokenMergingSettings.build(token_merging),
                TokenPoolingSettings.build(token_pooling))
    for s in settings:
        if s is not None:
            s.check_alpha(num_layers)
    return settings


def use_fused_attention(model: nn.Module) -> int:
    """Make every ``nn.MultiheadAttention`` in ``model`` (mmcv's attention wraps one)
    skip returning attention weights, so that torch takes its fused
    ``scaled_dot_product_attention`` path. Weights and keys are untouched; the
    outputs are the same up to float rounding. Returns the number of modules changed."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention) and not isinstance(m.forward, partial):
            m.forward = partial(nn.MultiheadAttention.forward, m, need_weights=False)
            n += 1
    return n


@register('MODELS')
class ExpeditedRoPEViT(RoPEViT):
    """mmwinwin's :class:`RoPEViT` with Expedite; clusters take the assignment-weighted
    mean ``(y, x)`` of their tokens as RoPE positions. Or, instead of Expedite, token
    merging or token pooling (outputs always on the full token grid).

    Args:
        expedite: dict of :class:`~mmwinwin.layers.ExpediteSettings` (``None``: plain).
        token_merging: dict of :class:`~mmwinwin.layers.TokenMergingSettings`, e.g.
            ``dict(alpha=1, r=8)``.
        token_pooling: dict of :class:`~mmwinwin.layers.TokenPoolingSettings`, e.g.
            ``dict(alpha=6, stride=2)``.
        *args, **kwargs: those of :class:`RoPEViT`.
    """

    def __init__(self, *args, expedite: dict | None = None, token_merging: dict | None = None,
                 token_pooling: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expedite, self.token_merging, self.token_pooling = build_token_policy_settings(
            expedite, token_merging, token_pooling, self.num_layers, type(self).__name__)

    def forward_expedited(self, img: torch.Tensor, reconstruct: bool = True
                          ) -> tuple[list[torch.Tensor], ReconstructionWeights | None]:
        """Feature maps and the reconstruction weights. With ``reconstruct=False`` the
        levels after alpha stay on the ``(h, w)`` cluster grid."""
        tokens, pos, (h, w) = self.embed_image(img)
        if self.token_merging is not None:
            outs, weights = merged_forward_tokens(self, tokens, pos, (h, w),
                                                  self.token_merging), None
        elif self.token_pooling is not None:
            outs, weights = pooled_forward_tokens(self, tokens, pos, (h, w),
                                                  self.token_pooling), None
        elif self.expedite is None:
            outs, weights = self.forward_tokens(tokens, pos, (h, w)), None
        else:
            outs, weights = expedited_forward_tokens(self, tokens, pos, (h, w), self.expedite,
                                                     reconstruct=reconstruct)
        maps = []
        for o in outs:
            gh, gw = (h, w)
            if weights is not None and o.shape[1] != h * w:
                gh, gw = weights.cluster_grid
            maps.append(o.transpose(1, 2).reshape(o.shape[0], -1, gh, gw))
        return maps, weights

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_expedited(img, reconstruct=True)[0]


class _MMSegExpeditePolicy(ExpeditePolicy):
    """:class:`ExpeditePolicy` for mmseg's ViT: outputs in mmseg's format (maps, cls token
    when asked for), reconstructed or on the cluster grid; no clustering when the settings
    are ``None`` (the plain model)."""

    def output(self, index: int, state) -> torch.Tensor:
        vit = state.vit
        return vit._format_output(state.x, vit.num_prefix_tokens, self.grid_size, self.weights,
                                  self.reconstruct)

    def after_block(self, index: int, state) -> None:
        if self.settings is not None:
            super().after_block(index, state)


@register('MODELS')
class ExpeditedMMSegViT(VisionTransformer):
    """mmseg's ``VisionTransformer`` (Segmenter, UPerNet-ViT, DPT) with Expedite.

    Same arguments and parameters as mmseg's class plus:

    Args:
        expedite: dict of :class:`~mmwinwin.layers.ExpediteSettings` (``None``: plain).
        fused_attention: run mmcv's attention through torch's fused SDPA kernel
            (``need_weights=False``); numerically the same model.
    """

    def __init__(self, *args, expedite: dict | None = None, fused_attention: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expedite = ExpediteSettings.build(expedite)
        if self.expedite is not None:
            self.expedite.check_alpha(len(self.layers))
        if fused_attention:
            use_fused_attention(self)

    def _format_output(self, x: torch.Tensor, num_prefix: int, hw: tuple[int, int],
                       weights: ReconstructionWeights | None, reconstruct: bool):
        out = x[:, num_prefix:]
        grid = hw
        if weights is not None:
            if reconstruct:
                out = reconstruct_tokens(out, weights)
            else:
                grid = weights.cluster_grid
        B, _, C = out.shape
        out = out.reshape(B, grid[0], grid[1], C).permute(0, 3, 1, 2).contiguous()
        if self.output_cls_token:
            out = [out, x[:, 0]]
        return out

    # --- the block-loop interface (run_blocks), over mmseg's own layers and norm
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_prefix_tokens(self) -> int:
        return 1 if self.with_cls_token else 0

    def run_block(self, index: int, x: torch.Tensor, pos=None, attn_mask=None) -> torch.Tensor:
        """mmseg's layer ``index`` (no positions: the absolute embedding is in the tokens);
        the final norm follows the last layer as in mmseg's forward."""
        x = self.layers[index](x)
        if index == self.num_layers - 1 and self.final_norm:
            x = self.norm1(x)
        return x

    def forward_expedited(self, inputs: torch.Tensor, reconstruct: bool = True
                          ) -> tuple[tuple, ReconstructionWeights | None]:
        """mmseg's forward with clustering after layer alpha, through the one block loop
        (``run_blocks`` with :class:`_MMSegExpeditePolicy`). Returns the outputs and the
        reconstruction weights; with ``reconstruct=False`` the levels after alpha stay
        on the cluster grid (for reconstruction after the head)."""
        B = inputs.shape[0]
        x, hw_shape = self.patch_embed(inputs)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = self._pos_embeding(x, hw_shape, self.pos_embed)
        if not self.with_cls_token:
            x = x[:, 1:]
        if self.pre_norm:
            x = self.pre_ln(x)
        hw = tuple(hw_shape)
        origin = [self._format_output(x, self.num_prefix_tokens, hw, None, reconstruct)] \
            if self.out_origin else []
        policy = _MMSegExpeditePolicy(self.expedite, hw, reconstruct)
        outs = run_blocks(self, x, None, policy)
        return tuple(origin + outs), policy.weights

    def forward(self, inputs: torch.Tensor) -> tuple:
        return self.forward_expedited(inputs, reconstruct=True)[0]
