"""Win-Win detectors (mmdet): train on window tokens, test whole images.

Training (``loss``): the backbone runs only on the tokens of the windows that
:class:`~mmwinwin.datasets.winwin.WinWinWindows` recorded in each sample's metainfo, every
token at its (y, x) in the full image (``window_batches.window_features``, shared with the
segmentors); a ViTDet-style backbone's windowed blocks partition inside each Win-Win window
and its global blocks attend across all windows of the image.
Each window's output tokens become a small ``(C, s, s)`` feature map; windows of equal size
across the batch are stacked as a batch of small images, their samples cropped to the same
windows by :func:`~mmwinwin.models.winwin.window_targets.crop_sample_to_window` (boxes
clipped, masks cropped, the border rule, crowd regions kept as ignore, panoptic segments cut
pixel for pixel), and the host's **own** ``loss`` (mmdet's ``TwoStageDetector.loss``,
``MaskFormer.loss``) runs on them. The one patch point, ToMe style: ``extract_feat`` given
:class:`WindowFeatures` instead of images runs only the neck on them, so no mmdet loss body is
copied. Losses of different window sizes are averaged weighted by their window counts.

Inputs may be whole images or, with ``WinWinPackDetInputs(pixels='windows')``, canvases
holding only the windows' pixels (``winwin_canvas`` in the metainfo): each window is embedded
from its place in the canvas at its full-image positions; the targets stay whole and are
cropped per window as above. The data preprocessor must then leave the targets alone and
the canvas small: ``pad_mask=True`` would pad the whole image's instance masks "to" the
smaller canvas (mmdet's ``BitmapMasks.pad`` then reshapes them into garbage), and a
``BatchFixedSizePad`` batch augment pads the canvas back to the whole image's size; each is
a ``ValueError`` naming the fix (``pad_mask=False``, ``batch_augments=None``), raised before
the preprocessor runs. Neither is needed by Win-Win training: the heads get each window as
an image of its own size, with its targets cropped to it.

Inference (``predict``) is the host's: the whole image in one backbone pass.
"""
from __future__ import annotations

import torch
from mmdet.models.data_preprocessors import BatchFixedSizePad
from mmdet.models.detectors import Mask2Former, TwoStageDetector

from ...layers.winwin.windows import check_patch_size
from ...registry import register
from .segmentors import check_token_backbone
from .window_batches import (add_weighted, canvas_batch, is_canvas_batch, window_features,
                             windows_by_size)
from .window_targets import BorderRule, crop_sample_to_window

__all__ = ['WindowFeatures', 'WinWinDetMixin', 'WinWinTwoStageDetector', 'WinWinMask2Former']

_MISSING = ("Win-Win training needs windows in each sample's metainfo: add "
            "dict(type='WinWinWindows', num_windows=2, window_size=S, patch_size=16) to the "
            'training pipeline after the geometric augmentations (RandomResize, RandomCrop, '
            "RandomFlip), and pack with dict(type='WinWinPackDetInputs') (or pass meta_keys "
            "including 'winwin_windows', 'winwin_grid', 'winwin_patch_size' to PackDetInputs: "
            'mmwinwin.datasets.WINWIN_META_KEYS).')


class WindowFeatures(tuple):
    """Backbone feature maps of a batch of windows, one ``(B, C, s, s)`` map per level.

    Given to a host detector's ``loss`` in place of the image batch: the Win-Win
    ``extract_feat`` then runs only the neck on them (the backbone already ran on the
    windows' tokens)."""


class WinWinDetMixin:
    """Window-token training for an mmdet detector (two-stage, Mask2Former).

    Args:
        border_rule: which instances cut by a window border stay targets
            (:class:`~mmwinwin.models.winwin.window_targets.BorderRule`:
            ``dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore')``).
    """

    def __init__(self, *args, border_rule: dict | None = None, **kwargs) -> None:
        rule = BorderRule.build(border_rule)  # checked before the (costly) host build
        super().__init__(*args, **kwargs)
        self.border_rule = rule
        self._check_backbone()

    def _check_backbone(self) -> int:
        return check_token_backbone(self.backbone)

    def train_step(self, data, optim_wrapper):
        """The host's step, after the canvas checks that must come before the data
        preprocessor pads masks or the batch."""
        if is_canvas_batch(data):
            self._check_canvas_inputs()
        return super().train_step(data, optim_wrapper)

    def _check_canvas_inputs(self) -> None:
        """Canvas inputs (``WinWinPackDetInputs(pixels='windows')``): whole-image targets
        left unpadded, the canvas not padded back to a fixed whole-image size."""
        pre = self.data_preprocessor
        if getattr(pre, 'pad_mask', False):
            raise ValueError(
                "The data preprocessor pads instance masks to the batch input (pad_mask=True), "
                "but with WinWinPackDetInputs(pixels='windows') the batch input is the canvas "
                "of the windows' pixels, smaller than the masks' whole image. Set "
                'model.data_preprocessor.pad_mask=False (Win-Win crops the masks to each window '
                'itself), or pack whole images.')
        for aug in getattr(pre, 'batch_augments', None) or []:
            if isinstance(aug, BatchFixedSizePad):
                raise ValueError(
                    f'The data preprocessor pads every training batch to size={aug.size} '
                    f"(BatchFixedSizePad), which pads the canvas of the windows' pixels "
                    "(WinWinPackDetInputs(pixels='windows')) back to the whole image's size and "
                    'saves nothing. Set model.data_preprocessor.batch_augments=None (the windows '
                    'are cropped to their own size for the heads), or pack whole images.')

    def extract_feat(self, batch_inputs):
        """Images: the host's (backbone + neck). :class:`WindowFeatures`: the neck only."""
        if isinstance(batch_inputs, WindowFeatures):
            feats = tuple(batch_inputs)
            return self.neck(feats) if self.with_neck else feats
        return super().extract_feat(batch_inputs)

    def window_batches(self, inputs: torch.Tensor, samples: list, batch_windows: list,
                       batch_offsets: list | None = None,
                       batch_grids: list | None = None) -> dict:
        """``{(h, w): (features, cropped samples)}``: every window of the batch, grouped
        by size; ``features`` is a list over windows of per-level ``(C, h, w)`` maps.
        ``batch_offsets`` / ``batch_grids``: ``inputs`` are canvases
        (:func:`~mmwinwin.models.winwin.window_batches.canvas_batch`)."""
        p = self._check_backbone()
        per_sample = window_features(self.backbone, inputs, batch_windows, p,
                                     batch_offsets=batch_offsets, batch_grids=batch_grids)
        return windows_by_size(samples, batch_windows, per_sample,
                               lambda sample, win: crop_sample_to_window(sample, win, p,
                                                                         self.border_rule))

    def loss(self, batch_inputs: torch.Tensor, batch_data_samples: list) -> dict:
        """The host's loss on the windows of every image (see the module docstring)."""
        if not batch_data_samples:
            raise ValueError('Win-Win training needs data samples carrying the windows.')
        p = self._check_backbone()
        metas = [s.metainfo for s in batch_data_samples]
        for m in metas:
            check_patch_size(m.get('winwin_patch_size'), p, m.get('img_path', ''))
        if not all('winwin_windows' in m for m in metas):
            if any('winwin_token_index' in m for m in metas):
                raise ValueError("WinWinWindows(mode='random_tokens') is an ablation for "
                                 "segmentation; Win-Win detectors train on windows: use "
                                 "mode='windows' (the default).")
            raise KeyError(_MISSING)
        offsets, grids = canvas_batch(metas)
        if offsets is not None:
            self._check_canvas_inputs()
        buckets = self.window_batches(batch_inputs, batch_data_samples,
                                      [m['winwin_windows'] for m in metas], offsets, grids)
        total = sum(len(crops) for _, crops in buckets.values())
        losses: dict = {}
        for feats, crops in buckets.values():
            stacked = WindowFeatures(torch.stack([f[lv] for f in feats])
                                     for lv in range(len(feats[0])))
            part = super().loss(stacked, crops)
            if len(buckets) == 1:
                return part
            add_weighted(losses, part, len(crops) / total)
        return losses


@register('MODELS')
class WinWinTwoStageDetector(WinWinDetMixin, TwoStageDetector):
    """mmdet two-stage detector (Mask R-CNN, Faster R-CNN, ...) trained on Win-Win windows;
    inference unchanged (whole image). A ``MaskRCNN`` config switches by
    ``model.type='WinWinTwoStageDetector'``. ``border_rule`` as :class:`WinWinDetMixin`."""


@register('MODELS')
class WinWinMask2Former(WinWinDetMixin, Mask2Former):
    """mmdet ``Mask2Former`` (instance or panoptic) trained on Win-Win windows; inference
    unchanged (whole image). ``border_rule`` as :class:`WinWinDetMixin`."""
