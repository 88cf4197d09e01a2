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

**Full-image phase** (``full_image_phase=dict(begin_fraction=5 / 6)``, or ``begin`` /
``every``: :mod:`.full_image_phase`, driven by ``FullImagePhaseHook``). From ``begin`` on,
``loss`` is the host's own (``TwoStageDetector.loss``, ``MaskFormer.loss``) on the whole
images, the windows in the metainfo ignored, as the segmentors' phase. The whole images need
``WinWinPackDetInputs(pixels='image')``; canvases (``pixels='windows'``) are a ``ValueError``
at the first training step. The Win-Win configs' data preprocessor (``pad_mask=False``,
``batch_augments=None``) leaves the instance masks (and, without ``pad_seg``, the segment
map) at the image's size while the batch input is padded to ``pad_size_divisor`` and the
batch's largest image; Mask2Former samples its mask targets at normalised points over the
padded prediction, so the phase pads them to the batch input first, as ``pad_mask=True`` /
``pad_seg=True`` would (masks with ``mask_pad_value``, the segment map with void
``seg_pad_value``; a no-op where the preprocessor already did). ``scale`` (resized whole
images) is not supported for detectors: a ``ValueError``.

**Head positions** (``WinWinMask2Former(head_positions=...)``). Mask2Former's pixel decoder and
transformer decoder add sine positional encodings (mmdet ``SinePositionalEncoding``,
``normalize=True`` in its configs) computed from each feature map alone: a cell's position is
its index over the map's size, so the heads see every window as a whole image of its own while
the backbone's RoPE positions are full-image. ``'window'`` (default) keeps that; ``'image'``
gives each window's cells their positions in the whole image, as the test forward computes
them: cell ``i`` of a level of stride ``s`` in a window at pixel offset ``y0`` of an image of
``H`` pixels (``winwin_grid`` times the patch size: the test's padded grid) is at
``(y0 / s + i + 1 + offset) / (H / s + eps) * scale`` (``normalize=False``: ``y0 / s + i + 1``),
which on a whole image is mmdet's own encoding.
(:func:`image_frame_positions`; measured in ``docs/winwin.md``, "Mask2Former's gap on the local
task".)
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import BatchFixedSizePad
from mmdet.models.layers import SinePositionalEncoding
from mmdet.models.detectors import Mask2Former, TwoStageDetector

from ...layers.winwin.windows import check_patch_size
from ...registry import register
from .full_image_phase import (FullImagePhaseMixin, check_full_image_phase,
                               full_image_phase_batch)
from .phase_train_cfg import phase_head_settings, swapped_attributes
from .segmentors import check_token_backbone
from .window_batches import (add_weighted, canvas_batch, is_canvas_batch, window_features,
                             windows_by_size)
from .window_mosaic import mosaic_features, mosaic_groups, mosaic_samples
from .window_stages import refuse_window_stages
from .window_targets import BorderRule, crop_sample_to_window

__all__ = ['WindowFeatures', 'WinWinDetMixin', 'WinWinTwoStageDetector', 'WinWinMask2Former',
           'image_frame_positions', 'window_frames']
_HEAD_POSITIONS = ('window', 'image')
#: the phase options of the detectors (``check_full_image_phase``): whole images at full size
#: only, the heads' own train_cfg, whole-image steps on part of the batch
_PHASE_OPTIONS = dict(resized_for='the training images', heads_train_cfg=True, part_batch=True)

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


def window_frames(samples: list, patch_size: int) -> list[tuple[int, int, int, int]]:
    """``(top, left, height, width)`` in pixels per cropped window sample: the window's offset
    in its image and the image's padded size of the test forward (``winwin_grid`` tokens)."""
    p = int(patch_size)
    frames = []
    for s in samples:
        m = s.metainfo
        if 'winwin_crop' not in m or 'winwin_grid' not in m:
            raise KeyError("head_positions='image' needs each window sample's 'winwin_crop' "
                           "and 'winwin_grid' (crop_sample_to_window and WinWinWindows put "
                           'them in the metainfo).')
        t, left = (int(v) for v in m['winwin_crop'][:2])
        gh, gw = (int(v) for v in m['winwin_grid'])
        frames.append((t * p, left * p, gh * p, gw * p))
    return frames


@contextlib.contextmanager
def image_frame_positions(module: torch.nn.Module, frames: list, window_hw: tuple[int, int]):
    """Within the block, every mmdet ``SinePositionalEncoding`` under ``module`` encodes the
    cells of batch item ``b`` (a window of ``window_hw`` pixels) at their place in the whole
    image ``frames[b] = (top, left, H, W)`` pixels (see the module docstring); a map's stride
    is ``window_hw / its size``. Padding masks are not supported (windows are never padded)."""
    encoders = [m for m in module.modules() if isinstance(m, SinePositionalEncoding)]
    frame = torch.tensor(frames, dtype=torch.float32)

    def forward(enc, mask, input=None):
        if mask is None or mask.any():
            raise ValueError('image_frame_positions: the heads gave a padding mask or none; '
                             'Win-Win windows are whole, unpadded maps.')
        B, h, w = mask.shape
        f = frame.to(mask.device)
        sy, sx = window_hw[0] / h, window_hw[1] / w
        ys = torch.arange(1, h + 1, dtype=torch.float32, device=mask.device)
        xs = torch.arange(1, w + 1, dtype=torch.float32, device=mask.device)
        y = f[:, 0:1] / sy + ys  # (B, h): the cells' 1-based indices in the whole image
        x = f[:, 1:2] / sx + xs
        if enc.normalize:
            y = (y + enc.offset) / (f[:, 2:3] / sy + enc.eps) * enc.scale
            x = (x + enc.offset) / (f[:, 3:4] / sx + enc.eps) * enc.scale
        dim_t = torch.arange(enc.num_feats, dtype=torch.float32, device=mask.device)
        dim_t = enc.temperature ** (2 * (dim_t // 2) / enc.num_feats)
        py, px = y[..., None] / dim_t, x[..., None] / dim_t  # (B, h, F), (B, w, F)
        py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), -1).flatten(2)
        px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), -1).flatten(2)
        return torch.cat((py[:, :, None].expand(B, h, w, -1),
                          px[:, None].expand(B, h, w, -1)), -1).permute(0, 3, 1, 2)

    saved = [e.__dict__.get('forward') for e in encoders]
    try:
        for e in encoders:
            e.forward = (lambda enc: lambda mask, input=None: forward(enc, mask, input))(e)
        yield
    finally:
        for e, old in zip(encoders, saved):
            if old is None:
                del e.forward
            else:
                e.forward = old


class WinWinDetMixin(FullImagePhaseMixin):
    """Window-token training for an mmdet detector (two-stage, Mask2Former).

    Args:
        border_rule: which instances cut by a window border stay targets
            (:class:`~mmwinwin.models.winwin.window_targets.BorderRule`:
            ``dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore')``).
        full_image_phase: ``dict(begin=N)``, ``dict(begin_fraction=f)`` or
            ``dict(every=k)``: the host's own loss on whole images from iteration N (or
            ``f * max_iters``) on, with ``FullImagePhaseHook`` (the module docstring);
            ``None`` (default): windows throughout. ``train_cfg``: the detector's whole
            ``train_cfg`` for the whole-image steps (default: ``model.train_cfg``, the
            windows'); :mod:`.phase_train_cfg`. ``batch_fraction``: the share of each batch's
            images a whole-image step trains on (default 1: all).
    """

    def __init__(self, *args, border_rule: dict | None = None,
                 full_image_phase: dict | None = None, **kwargs) -> None:
        rule = BorderRule.build(border_rule)  # checked before the (costly) host build
        phase = check_full_image_phase(full_image_phase, **_PHASE_OPTIONS)
        super().__init__(*args, **kwargs)
        self.border_rule = rule
        self._init_full_image_phase(phase, **_PHASE_OPTIONS)
        heads = (phase or {}).get('train_cfg')
        #: what the heads build from the phase's train_cfg, swapped in for whole-image steps
        self._phase_heads = [] if heads is None else phase_head_settings(self, heads)
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
        """Canvas inputs (``WinWinPackDetInputs(pixels='windows')``): no full-image phase,
        whole-image targets left unpadded, the canvas not padded back to a fixed whole-image
        size."""
        if self.full_image_phase is not None:
            raise ValueError(
                f'full_image_phase={self.full_image_phase} trains on whole images, but the '
                "training pipeline packs only the windows' pixels (WinWinPackDetInputs("
                "pixels='windows')). Pack whole images (WinWinPackDetInputs(), "
                "pixels='image') or drop full_image_phase.")
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

    def head_loss(self, stacked: WindowFeatures, crops: list) -> dict:
        """The host's ``loss`` on one batch of equal-size windows."""
        return super().loss(stacked, crops)

    def _pad_targets_to_input(self, batch_inputs: torch.Tensor, samples: list) -> None:
        """Pad each sample's instance masks and segment map (in place, as mmdet's
        ``pad_mask`` / ``pad_seg`` do) to the batch input's size, when they are smaller:
        mask targets over the padded input (the module docstring)."""
        H, W = (int(v) for v in batch_inputs.shape[-2:])
        pre = self.data_preprocessor
        mask_pad = getattr(pre, 'mask_pad_value', 0)
        seg_pad = getattr(pre, 'seg_pad_value', 255)
        for s in samples:
            inst = s.get('gt_instances')
            if inst is not None and 'masks' in inst:
                masks = inst.masks
                if isinstance(masks, torch.Tensor):
                    h, w = masks.shape[-2:]
                else:
                    h, w = masks.height, masks.width
                if h > H or w > W:
                    raise ValueError(
                        f'Instance masks of {h}x{w} pixels are larger than the batch input '
                        f'({H}x{W}) of the full-image phase ({s.metainfo.get("img_path", "")}): '
                        'the data preprocessor or the pipeline left them at another size.')
                if (h, w) != (H, W):
                    inst.masks = (F.pad(masks, (0, W - w, 0, H - h), value=mask_pad)
                                  if isinstance(masks, torch.Tensor)
                                  else masks.pad((H, W), pad_val=mask_pad))
            seg = s.get('gt_sem_seg')
            if seg is not None and 'sem_seg' in seg:
                data = seg.sem_seg
                h, w = data.shape[-2:]
                if (h, w) != (H, W):
                    seg.sem_seg = F.pad(data, (0, max(W - w, 0), 0, max(H - h, 0)),
                                        value=seg_pad)[..., :H, :W]

    def full_image_loss(self, batch_inputs: torch.Tensor, batch_data_samples: list) -> dict:
        """The full-image phase: the host's own ``loss`` on the whole images (targets padded
        to the batch input; the windows in the metainfo ignored), on the first
        ``ceil(batch_fraction * B)`` of them, under the phase's ``train_cfg`` when it has one."""
        keep = full_image_phase_batch(self.full_image_phase, len(batch_data_samples))
        batch_inputs, batch_data_samples = batch_inputs[:keep], batch_data_samples[:keep]
        self._pad_targets_to_input(batch_inputs, batch_data_samples)
        with swapped_attributes(self._phase_heads):
            return super().loss(batch_inputs, batch_data_samples)

    def loss(self, batch_inputs: torch.Tensor, batch_data_samples: list) -> dict:
        """The host's loss on the windows of every image (see the module docstring)."""
        if not batch_data_samples:
            raise ValueError('Win-Win training needs data samples carrying the windows.')
        p = self._check_backbone()
        metas = [s.metainfo for s in batch_data_samples]
        for m in metas:
            check_patch_size(m.get('winwin_patch_size'), p, m.get('img_path', ''))
        offsets, grids = canvas_batch(metas)
        if offsets is not None:
            self._check_canvas_inputs()
        refuse_window_stages(metas, type(self).__name__)
        if self.in_full_image_phase():
            return self.full_image_loss(batch_inputs, batch_data_samples)
        if not all('winwin_windows' in m for m in metas):
            if any('winwin_token_index' in m for m in metas):
                raise ValueError("WinWinWindows(mode='random_tokens') is an ablation for "
                                 "segmentation; Win-Win detectors train on windows: use "
                                 "mode='windows' (the default).")
            raise KeyError(_MISSING)
        buckets = self.window_batches(batch_inputs, batch_data_samples,
                                      [m['winwin_windows'] for m in metas], offsets, grids)
        total = sum(len(crops) for _, crops in buckets.values())
        losses: dict = {}
        for feats, crops in buckets.values():
            stacked = WindowFeatures(torch.stack([f[lv] for f in feats])
                                     for lv in range(len(feats[0])))
            part = self.head_loss(stacked, crops)
            if len(buckets) == 1:
                return part
            add_weighted(losses, part, len(crops) / total)
        return losses


@register('MODELS')
class WinWinTwoStageDetector(WinWinDetMixin, TwoStageDetector):
    """mmdet two-stage detector (Mask R-CNN, Faster R-CNN, ...) trained on Win-Win windows;
    inference unchanged (whole image). A ``MaskRCNN`` config switches by
    ``model.type='WinWinTwoStageDetector'``. ``border_rule`` and ``full_image_phase`` as
    :class:`WinWinDetMixin`."""


@register('MODELS')
class WinWinMask2Former(WinWinDetMixin, Mask2Former):
    """mmdet ``Mask2Former`` (instance or panoptic) trained on Win-Win windows; inference
    unchanged (whole image). ``border_rule`` and ``full_image_phase`` as
    :class:`WinWinDetMixin` (in the phase the heads see whole images with mmdet's own
    positions: ``head_positions`` and ``head_mosaic`` apply to windows only).

    Args:
        head_positions: ``'window'`` (default): the heads' sine positional encodings span
            each window as if it were the image; ``'image'``: each window's cells are
            encoded at their place in the whole image (the module docstring).
        head_mosaic: ``None`` (default): the heads see each window as an image;
            ``(rows, cols)``: they see mosaics of ``rows x cols`` equal-size windows of the
            batch, row-major in batch order (:mod:`.window_mosaic`).
    """

    def __init__(self, *args, head_positions: str = 'window', head_mosaic=None,
                 **kwargs) -> None:
        if head_positions not in _HEAD_POSITIONS:
            raise ValueError(f"head_positions must be 'window' (the heads' positions span "
                             f"each window) or 'image' (whole-image positions), got "
                             f'{head_positions!r}.')
        if head_mosaic is not None:
            if (not isinstance(head_mosaic, (list, tuple)) or len(head_mosaic) != 2
                    or not all(isinstance(v, int) and v >= 1 for v in head_mosaic)):
                raise ValueError('head_mosaic must be None or (rows, cols) of positive ints, '
                                 f'got {head_mosaic!r}.')
            if head_positions != 'window':
                raise ValueError("head_mosaic lays windows of several images side by side: "
                                 "use it with head_positions='window'.")
            head_mosaic = tuple(head_mosaic)
        super().__init__(*args, **kwargs)
        self.head_positions = head_positions
        self.head_mosaic = head_mosaic

    def head_loss(self, stacked: WindowFeatures, crops: list) -> dict:
        if self.head_mosaic is not None:
            return self._mosaic_loss(stacked, crops)
        if self.head_positions == 'window':
            return super().head_loss(stacked, crops)
        p = self._check_backbone()
        size = tuple(int(v) for v in crops[0].metainfo['img_shape'][:2])
        with image_frame_positions(self.panoptic_head, window_frames(crops, p), size):
            return super().head_loss(stacked, crops)

    def _mosaic_loss(self, stacked: WindowFeatures, crops: list) -> dict:
        """The heads' loss on ``head_mosaic`` mosaics of the windows (full mosaics in one
        batch, the rest as one row), weighted by their window counts."""
        rows, cols = self.head_mosaic
        groups = mosaic_groups(len(crops), rows, cols)
        full = [g for g in groups if g[1:] == (rows, cols)]
        parts = []
        if full:
            k = rows * cols
            feats = WindowFeatures(torch.cat([mosaic_features(lv[i:i + k], rows, cols)
                                              for i, _, _ in full]) for lv in stacked)
            samples = [mosaic_samples(crops[i:i + k], rows, cols) for i, _, _ in full]
            parts.append((super().head_loss(feats, samples), k * len(full)))
        for i, r, c in groups[len(full):]:
            feats = WindowFeatures(mosaic_features(lv[i:i + r * c], r, c) for lv in stacked)
            parts.append((super().head_loss(feats, [mosaic_samples(crops[i:i + r * c], r, c)]),
                          r * c))
        if len(parts) == 1:
            return parts[0][0]
        losses: dict = {}
        for part, n in parts:
            add_weighted(losses, part, n / len(crops))
        return losses
