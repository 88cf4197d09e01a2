"""Win-Win segmentor and depth estimator: train on window tokens, test whole images.

Training (``loss``): the backbone runs only on the tokens of the windows that
:class:`~mmwinwin.datasets.winwin.WinWinWindows` recorded in each sample's metainfo,
each token at its true (y, x) position in the full image. Each window's output
tokens become a small ``(C, h, w)`` feature grid of its own; the neck and an
*unchanged* mmseg decode head run on these grids, with every ``gt_*`` pixel map of the
sample (label, depth) cropped to the same window, so the loss uses the windows only.

Inputs may be whole images or, with ``WinWinPackSegInputs(pixels='windows')``, canvases
holding only the windows' pixels (``winwin_canvas`` in the metainfo): each window is then
embedded from its place in the canvas at its full-image positions, and the targets, which
stay whole, are cropped the same way. Canvases need ``data_preprocessor.size=None`` (a
fixed size pads them back to the whole image) and cannot feed ``full_image_phase`` or
``context_tokens`` (both need the whole image): each is a ``ValueError`` naming the fix.

Inference is the host's: ``whole`` runs the full-resolution image in one pass,
``slide`` stays available.

``context_tokens=dict(pool=P)`` (cells of about ``P x P`` tokens) or ``dict(grid=(h, w))`` (a
fixed ``h x w`` cells), with ``reduce='mean'`` (default) or ``'max'``, adds pooled context
tokens of the whole image beside the windows (``mmwinwin.layers.winwin.context``), in training
and in whole-image inference alike.

``full_image_phase=dict(begin=N)`` (or ``begin_fraction``) trains on the whole image from
iteration N on: the host's own ``loss`` (all tokens, pixel maps uncropped, the windows in the
metainfo ignored; with context tokens, the whole image plus its context tokens, as in
inference). ``FullImagePhaseHook`` tells the model the iteration
(``full_image_phase.py``). With ``scale=s`` the phase's images are resized by ``s`` and their
tokens placed at the full image's coordinates (:meth:`WinWinMixin._resized_image_feats`).

The "random tokens" ablation (``winwin_token_index`` in the metainfo) runs the
backbone on the kept tokens, scatters them back into the full grid (zeros elsewhere)
and masks the labels outside the kept tokens (ignore index / zero depth).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import DepthEstimator, EncoderDecoder

from ...layers.winwin.context import ContextTokens
from ...layers.winwin.windows import (check_patch_size, gather_tokens, rope_grid_size,
                                      scatter_tokens)
from ...registry import register
from .full_image_phase import (FullImagePhaseMixin, frozen_lower_blocks,
                               full_image_phase_batch, full_image_phase_frozen_blocks,
                               full_image_phase_scale)
from ..segmentor_settings import check_segmentor_settings
from .window_batches import (add_weighted, canvas_batch, is_canvas_batch, window_features,
                             windows_by_size)
from .window_stages import stage_windows
from .window_targets import crop_sample_to_window

__all__ = ['WinWinMixin', 'WinWinEncoderDecoder', 'WinWinDepthEstimator', 'check_token_backbone']

_MISSING = ("Win-Win training needs windows in each sample's metainfo: add "
            "dict(type='WinWinWindows', ...) to the training pipeline after the geometric "
            "augmentations, and pack with dict(type='WinWinPackSegInputs') (or pass "
            "meta_keys including 'winwin_windows', 'winwin_token_index', 'winwin_grid', "
            "'winwin_patch_size' to PackSegInputs: mmwinwin.datasets.WINWIN_META_KEYS).")


def check_token_backbone(backbone) -> int:
    """The patch size of a backbone Win-Win can train on windows of (it embeds pixels and
    runs tokens at explicit positions: RoPEViT, RoPEViTDet); a clear error otherwise."""
    for attr in ('patch_embed', 'forward_tokens', 'patch_size'):
        if not hasattr(backbone, attr):
            raise TypeError(f'Win-Win needs a token backbone with `{attr}` (RoPEViT or '
                            f'RoPEViTDet); got {type(backbone).__name__}.')
    return int(backbone.patch_size)


class WinWinMixin(FullImagePhaseMixin):
    """Window-token training for an mmseg ``EncoderDecoder``-family model (and, with
    ``full_image_phase``, whole-image training for the last iterations)."""

    def __init__(self, *args, **kwargs) -> None:
        check_segmentor_settings(kwargs.get('test_cfg'), kwargs.get('train_cfg'),
                                 kwargs.get('decode_head'), kwargs.get('auxiliary_head'))
        super().__init__(*args, **kwargs)

    context: ContextTokens | None = None

    def _init_context_tokens(self, context_tokens: dict | None) -> None:
        self.context = ContextTokens.build(context_tokens)

    def _append_context(self, images: torch.Tensor, tokens: torch.Tensor, pos: torch.Tensor,
                        grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens``/``pos`` followed by the pooled context tokens of ``images``."""
        full, hw = self.backbone.patch_embed(images)
        ctx, cpos = self.context(full, hw)
        if pos.dim() == 3:
            cpos = cpos[None].expand(pos.shape[0], -1, -1)
        return torch.cat([tokens, ctx], 1), torch.cat([pos, cpos.to(pos.dtype)], -2)

    def extract_feat(self, inputs: torch.Tensor, *args, **kwargs) -> list[torch.Tensor]:
        """Whole-image features; with context tokens, the backbone also sees them."""
        if self.context is None:
            return super().extract_feat(inputs, *args, **kwargs)
        self._check_backbone()
        tokens, pos, (h, w) = self.backbone.embed_image(inputs)
        n = tokens.shape[1]
        tokens, pos = self._append_context(inputs, tokens, pos, (h, w))
        shapes = [(h, w), self.context.shape((h, w))]
        outs = self.backbone.forward_tokens(tokens, pos, (h, w), window_shapes=shapes)
        feats = [o[:, :n].transpose(1, 2).reshape(o.shape[0], -1, h, w) for o in outs]
        return self.neck(feats) if self.with_neck else feats

    def _check_backbone(self) -> int:
        return check_token_backbone(self.backbone)

    def _check_phase_settings(self) -> None:
        if full_image_phase_scale(self.full_image_phase) != 1 and self.context is not None:
            raise ValueError(
                f'full_image_phase={self.full_image_phase} resizes the whole images, and '
                f'context_tokens={self.context} pools them at full size; the '
                'two are not combined. Drop full_image_phase.scale or context_tokens.')
        frozen = full_image_phase_frozen_blocks(self.full_image_phase)
        blocks = getattr(self.backbone, 'blocks', None)
        if frozen and (blocks is None or frozen > len(blocks)):
            have = f'has {len(blocks)} blocks' if blocks is not None else \
                f'({type(self.backbone).__name__}) has no `blocks`'
            raise ValueError(f'full_image_phase.frozen_blocks={frozen} freezes the first '
                             f'{frozen} transformer blocks in the phase, but the backbone '
                             f'{have}. Set frozen_blocks to at most the number of blocks.')

    def _resized_image_feats(self, inputs: torch.Tensor, scale: float
                             ) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """Backbone features of the whole images resized by ``scale``, each token at the
        full image's coordinates of its centre: token ``(r, c)`` of the resized image covers
        full-image pixels ``[r p H / h', (r + 1) p H / h')`` (``h'`` its height), so it sits
        at ``(r + 0.5) H / h' - 0.5`` in the full token grid (likewise ``x``); the RoPE grid is
        the full image's. Returns ``(B, C, h, w)`` maps on the resized token grid and the resized
        image's pixel size."""
        p = self._check_backbone()
        H, W = inputs.shape[-2:]
        size = (max(1, round(H * scale)), max(1, round(W * scale)))
        small = F.interpolate(inputs, size=size, mode='bilinear', align_corners=False,
                              antialias=True)
        tokens, pos, (h, w) = self.backbone.embed_image(small)
        pos = pos.to(tokens.dtype)
        pos = torch.stack([(pos[..., 0] + 0.5) * (H / size[0]) - 0.5,
                           (pos[..., 1] + 0.5) * (W / size[1]) - 0.5], -1)
        grid = rope_grid_size((H, W), p)
        outs = self.backbone.forward_tokens(tokens, pos, grid, window_shapes=[(h, w)])
        return [o.transpose(1, 2).reshape(o.shape[0], -1, h, w) for o in outs], size

    @staticmethod
    def _resized_sample(sample, size: tuple[int, int]):
        """A copy of ``sample`` whose ``gt_*`` pixel maps are resized to ``size`` (``h, w``)
        with the image, by the nearest pixel centre (``nearest-exact``), as a resizing
        transform of the pipeline resizes labels; values untouched (ignore stays ignore)."""
        new = sample.__class__()
        new.set_metainfo(dict(sample.metainfo, img_shape=tuple(size), pad_shape=tuple(size)))
        for key in sample.keys():
            value = getattr(sample, key)
            if key.startswith('gt_') and isinstance(value, PixelData):
                data = value.data
                resized = F.interpolate(data[None].float(), size=tuple(size),
                                        mode='nearest-exact')[0].to(data.dtype)
                new.set_data({key: PixelData(data=resized)})
        return new

    def _window_feats(self, inputs: torch.Tensor, batch_windows: list,
                      batch_offsets: list | None = None,
                      batch_grids: list | None = None) -> list[list[torch.Tensor]]:
        """Per sample, per window: list over backbone levels of (C, h, w) grids
        (:func:`~mmwinwin.models.winwin.window_batches.window_features`; context tokens, if
        any, are one more grid; ``batch_offsets`` / ``batch_grids`` for canvas inputs)."""
        def context(images, tok, pos, grid):
            tok, pos = self._append_context(images, tok, pos, grid)
            return tok, pos, self.context.shape(grid)
        return window_features(self.backbone, inputs, batch_windows, self._check_backbone(),
                               context if self.context is not None else None,
                               batch_offsets, batch_grids)

    def train_step(self, data, optim_wrapper):
        """The host's step, after the canvas checks (before the data preprocessor pads the
        batch to a fixed size)."""
        if is_canvas_batch(data):
            self._check_canvas_inputs()
        return super().train_step(data, optim_wrapper)

    def _check_canvas_inputs(self) -> None:
        """Canvas inputs (``WinWinPack*Inputs(pixels='windows')``) hold only the windows'
        pixels: a clear error for the settings that need whole training images."""
        packer = "WinWinPackSegInputs(pixels='windows')"
        if self.full_image_phase is not None:
            raise ValueError(
                f'full_image_phase={self.full_image_phase} trains on whole images, but the '
                f"training pipeline packs only the windows' pixels ({packer}). Pack whole "
                "images (WinWinPackSegInputs(), pixels='image') or drop full_image_phase.")
        if self.context is not None:
            raise ValueError(
                f'context_tokens={self.context} pools the whole image, but the '
                f"training pipeline packs only the windows' pixels ({packer}). Pack whole "
                "images (WinWinPackSegInputs(), pixels='image') or set context_tokens=None.")
        size = getattr(self.data_preprocessor, 'size', None)
        if size is not None:
            raise ValueError(
                f'The data preprocessor pads every training input to size={tuple(size)}, which '
                f"pads the canvas of the windows' pixels ({packer}) back to the whole image's "
                'size and saves nothing. Set model.data_preprocessor.size=None and '
                f'size_divisor={self._check_backbone()} (test-time padding is its test_cfg).')

    @staticmethod
    def _crop_sample(sample, win: tuple, p: int):
        """A copy of ``sample`` whose ``gt_*`` pixel maps are cropped to ``win``
        (:func:`~mmwinwin.models.winwin.window_targets.crop_sample_to_window`, the one
        cropping of targets that every Win-Win model uses)."""
        return crop_sample_to_window(sample, win, p)

    def _heads_loss(self, feats: list[torch.Tensor], samples: list) -> dict:
        if self.with_neck:
            feats = self.neck(feats)
        losses = self._decode_head_forward_train(feats, samples)
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(feats, samples))
        return losses

    def _window_loss(self, inputs: torch.Tensor, data_samples: list,
                     batch_windows: list, batch_offsets: list | None = None,
                     batch_grids: list | None = None) -> dict:
        p = self._check_backbone()
        per_sample = self._window_feats(inputs, batch_windows, batch_offsets, batch_grids)
        by_size = windows_by_size(data_samples, batch_windows, per_sample,
                                  lambda sample, win: self._crop_sample(sample, win, p))
        total = sum(len(v[1]) for v in by_size.values())
        losses: dict = {}
        for feats, samples in by_size.values():
            stacked = [torch.stack([f[l] for f in feats]) for l in range(len(feats[0]))]
            part = self._heads_loss(stacked, samples)
            if len(by_size) == 1:
                return part
            add_weighted(losses, part, len(samples) / total)
        return losses

    def _token_loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        """Random-token ablation: scatter kept tokens to the full grid, mask labels."""
        p = self._check_backbone()
        if self.context is not None:
            raise ValueError('context_tokens are for window training; the random-tokens '
                             'ablation does not use them: set context_tokens=None.')
        tokens, _, grid = self.backbone.embed_image(inputs)
        index = []
        for s in data_samples:
            sgh, sgw = s.metainfo['winwin_grid']
            idx = torch.as_tensor(s.metainfo['winwin_token_index'], device=inputs.device)
            index.append((idx // sgw) * grid[1] + idx % sgw)
        if len({len(i) for i in index}) != 1:
            raise ValueError('random_tokens mode needs the same token budget for every image '
                             'of a batch; use a fixed window_size or token_budget.')
        index = torch.stack(index)
        gy, gx = index // grid[1], index % grid[1]
        pos = torch.stack([gy, gx], -1).float()
        # the RoPE grid: the images' whole-image test grid (winwin_grid) when they share one
        full = {tuple(int(v) for v in s.metainfo['winwin_grid']) for s in data_samples}
        rope_grid = full.pop() if len(full) == 1 else grid
        levels = self.backbone.forward_tokens(gather_tokens(tokens, index), pos, rope_grid)
        n = grid[0] * grid[1]
        feats = [scatter_tokens(lv, index, n).transpose(1, 2).reshape(
            lv.shape[0], lv.shape[2], *grid) for lv in levels]
        masked = []
        for s, idx in zip(data_samples, index):
            keep = torch.zeros(n, dtype=torch.bool, device=inputs.device)
            keep[idx] = True
            keep = keep.view(*grid).repeat_interleave(p, 0).repeat_interleave(p, 1)
            new = s.__class__()
            new.set_metainfo(dict(s.metainfo))
            for key in s.keys():
                value = getattr(s, key)
                if key.startswith('gt_') and isinstance(value, PixelData):
                    data = value.data
                    k = keep[:data.shape[-2], :data.shape[-1]]
                    if data.shape[-2] > k.shape[0] or data.shape[-1] > k.shape[1]:
                        k = torch.nn.functional.pad(k, (0, data.shape[-1] - k.shape[1],
                                                        0, data.shape[-2] - k.shape[0]))
                    fill = 0 if key == 'gt_depth_map' else self.decode_head.ignore_index
                    new.set_data({key: PixelData(data=torch.where(k, data,
                                                                  torch.full_like(data, fill)))})
            masked.append(new)
        return self._heads_loss(feats, masked)

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict:
        if not data_samples:
            raise ValueError('Win-Win training needs data samples carrying the windows.')
        metas = [s.metainfo for s in data_samples]
        p = self._check_backbone()
        for m in metas:
            check_patch_size(m.get('winwin_patch_size'), p, m.get('img_path', ''))
        offsets, grids = canvas_batch(metas)
        if offsets is not None:
            self._check_canvas_inputs()
        if self.in_full_image_phase():
            keep = full_image_phase_batch(self.full_image_phase, len(data_samples))
            inputs, data_samples = inputs[:keep], data_samples[:keep]
            scale = self.full_image_phase_scale_now()
            with frozen_lower_blocks(self.backbone,
                                     full_image_phase_frozen_blocks(self.full_image_phase)):
                if scale == 1:
                    return super().loss(inputs, data_samples)  # the host's whole-image loss
                feats, size = self._resized_image_feats(inputs, scale)
                return self._heads_loss(feats,
                                        [self._resized_sample(s, size) for s in data_samples])
        staged = stage_windows(metas, self)
        if staged is not None:
            return self._window_loss(inputs, data_samples, staged, offsets, grids)
        if all('winwin_windows' in m for m in metas):
            return self._window_loss(inputs, data_samples, [m['winwin_windows'] for m in metas],
                                     offsets, grids)
        if all('winwin_token_index' in m for m in metas):
            return self._token_loss(inputs, data_samples)
        raise KeyError(_MISSING)


@register('MODELS')
class WinWinEncoderDecoder(WinWinMixin, EncoderDecoder):
    """mmseg ``EncoderDecoder`` trained on Win-Win windows; inference unchanged
    (``test_cfg=dict(mode='whole')`` for one full-resolution pass, or ``'slide'``).

    With a ``CheckedSegDataPreProcessor``, the decode head's class count and ignore
    index are given to it, so a label value out of
    range is an error naming its file (instead of torch's "Target 39 is out of bounds").

    Args:
        context_tokens: ``dict(pool=P)`` (about one per ``P x P`` token cell) or
            ``dict(grid=(h, w))`` (a fixed ``h x w`` cells), with ``reduce='mean'`` (default)
            or ``'max'``, to add pooled context tokens of the whole image beside the windows,
            in training and inference.
        full_image_phase: ``dict(begin=N)`` or ``dict(begin_fraction=f)`` to train on whole
            images from iteration N (or ``f * max_iters``) on, with ``FullImagePhaseHook``
            (``full_image_phase.py``); ``None`` (default): windows throughout.
    """

    def __init__(self, *args, context_tokens: dict | None = None,
                 full_image_phase: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_context_tokens(context_tokens)
        self._init_full_image_phase(full_image_phase)
        self._check_phase_settings()
        pre = self.data_preprocessor
        if hasattr(pre, 'num_classes'):
            pre.num_classes = int(self.decode_head.num_classes)
            pre.ignore_index = int(self.decode_head.ignore_index)


@register('MODELS')
class WinWinDepthEstimator(WinWinMixin, DepthEstimator):
    """mmseg ``DepthEstimator`` trained on Win-Win windows (``gt_depth_map`` cropped).

    Inference: ``whole`` (one full-resolution pass), ``slide`` or ``slide_flip``.
    (mmseg 1.2.2's ``DepthEstimator.inference`` runs ``whole`` when ``slide`` is asked
    for; this class dispatches ``slide`` correctly.) ``context_tokens`` and
    ``full_image_phase`` as for :class:`WinWinEncoderDecoder`.
    """

    def __init__(self, *args, context_tokens: dict | None = None,
                 full_image_phase: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_context_tokens(context_tokens)
        self._init_full_image_phase(full_image_phase)
        self._check_phase_settings()

    def inference(self, inputs: torch.Tensor, batch_img_metas: list) -> torch.Tensor:
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return super().inference(inputs, batch_img_metas)
