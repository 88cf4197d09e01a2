"""One cropping of a training sample's targets to one Win-Win window.

Win-Win trains the heads on each window as a small image of its own (Leroy et al.,
ICLR 2024: "the loss can only use the kept windows"), so every target of the sample must
be cut to the same window: segmentation labels and depth maps (mmseg), boxes, instance
masks, crowd / ignore regions and panoptic segments (mmdet). :func:`crop_sample_to_window`
is the one function that does it for every task; the Win-Win segmentors, depth estimators
and detectors all call it.

What is cropped:

* every ``gt_*`` :class:`~mmengine.structures.PixelData` (mmseg ``gt_sem_seg``,
  ``gt_depth_map``; mmdet's panoptic ``gt_sem_seg``): each field sliced to the window's
  pixels exactly (values untouched: void stays void, ignore stays ignore);
* ``gt_instances``: boxes translated into the window and clipped to it (mmdet's
  :class:`~mmdet.structures.bbox.HorizontalBoxes` ``translate_`` / ``clip_``; plain
  ``(N, 4)`` xyxy tensors too), masks cropped with mmdet's own ``BitmapMasks.crop`` /
  ``PolygonMasks.crop``, every other per-instance field (labels, ...) indexed along;
* ``ignored_instances`` (COCO crowd regions, which ``PackDetInputs`` puts there): cropped
  the same way and kept as ignore wherever any part of them is inside the window.

**Border rule** (:class:`BorderRule`). An instance cut by the window border is kept
as a target when its visible part inside the window has

* area ``>= min_visible_area`` pixels, **and**
* area ``>= min_visible_fraction`` of ``min(its area in the whole image, the window's
  area)``,

measured in mask pixels when the sample has masks (polygon area for polygon masks), else
in box area. Otherwise it leaves ``gt_instances``; with ``dropped='ignore'`` (default) it
is added to ``ignored_instances`` (its clipped box and cropped mask), so a detector whose
assigner uses ignore regions (mmdet's ``MaxIoUAssigner(ignore_iof_thr=...)``) is not
taught that a partly visible object is background; ``dropped='discard'`` removes it. An
instance with nothing inside the window is removed in both modes.

Why these defaults (``min_visible_area=16``, ``min_visible_fraction=0.25``):

* mmdet's own crops (``RandomCrop``, then ``FilterAnnotations``) keep any instance with a
  non-empty box / at least 1 mask pixel. A window cuts far more objects than an
  image-level crop (two 448 px windows of a 1024 px image), and the test image shows those
  objects whole, so a sliver whose class and extent cannot be read from its visible part
  is better ignored than taught as a complete object: a quarter of the object is the
  threshold.
* The fraction is of ``min(object area, window area)``, not of the object area alone:
  an object larger than the window can never be more than ``window / object`` visible, and
  with a plain fraction the largest objects would never be positive samples. An object that
  fills a quarter of the window counts as well visible.
* 16 pixels (4 x 4) is one cell of the stride-4 level of a simple feature pyramid, the
  finest map any of the heads reads: less than that no head can localise.

Panoptic targets: Mask2Former builds its thing targets from ``gt_instances`` and its stuff
targets from ``gt_sem_seg``; a dropped thing sliver is then no target of any query (Mask2Former
has no ignore regions; the same happens with mmdet's own ``RandomCrop``), its pixels stay
as they are in ``gt_sem_seg``.

The cropped sample's metainfo says ``img_shape = pad_shape = batch_input_shape =
ori_shape =`` the window's pixel size and records ``winwin_crop`` (the window, in tokens);
``flip`` is removed (the crop is a new image).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData

from ...layers.settings import check_settings_keys

__all__ = ['BorderRule', 'crop_sample_to_window', 'crop_instances', 'window_pixel_box']

_DROPPED = ('ignore', 'discard')


@dataclasses.dataclass(frozen=True)
class BorderRule:
    """Which instances cut by a window border stay targets (see the module docstring).

    Args:
        min_visible_area: pixels of the instance that must lie inside the window.
        min_visible_fraction: share of ``min(instance area, window area)`` that must lie
            inside the window, in ``[0, 1]``.
        dropped: ``'ignore'`` (a dropped instance becomes an ignore region) or
            ``'discard'`` (it is removed).
    """

    min_visible_area: float = 16.0
    min_visible_fraction: float = 0.25
    dropped: str = 'ignore'

    def __post_init__(self) -> None:
        area, frac = self.min_visible_area, self.min_visible_fraction
        if isinstance(area, bool) or not isinstance(area, (int, float)) or area < 0:
            raise ValueError(f'min_visible_area must be a number of pixels >= 0, got {area!r}.')
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise ValueError(f'min_visible_fraction must be a number in [0, 1], got {frac!r}.')
        if self.dropped not in _DROPPED:
            raise ValueError(f"dropped must be 'ignore' (dropped instances become ignore "
                             f"regions) or 'discard' (they are removed), got {self.dropped!r}.")

    @classmethod
    def build(cls, rule: 'BorderRule | dict | None') -> 'BorderRule':
        """``rule`` as a :class:`BorderRule`: ``None`` gives the defaults, a dict its fields."""
        if rule is None:
            return cls()
        if isinstance(rule, cls):
            return rule
        if isinstance(rule, dict):
            check_settings_keys(rule, tuple(f.name for f in dataclasses.fields(cls)),
                                'border_rule')
            return cls(**rule)
        raise TypeError(f'border_rule must be a dict such as dict(min_visible_area=16, '
                        f"min_visible_fraction=0.25, dropped='ignore'), a BorderRule or None; "
                        f'got {rule!r}.')


def window_pixel_box(window: Sequence[int], patch_size: int) -> tuple[int, int, int, int]:
    """The window ``(top, left, h, w)`` in tokens as a pixel box ``(x1, y1, x2, y2)``."""
    t, left, h, w = (int(v) for v in window)
    p = int(patch_size)
    return left * p, t * p, (left + w) * p, (t + h) * p


def _box_tensor(boxes) -> torch.Tensor:
    return boxes.tensor if hasattr(boxes, 'tensor') else torch.as_tensor(boxes)


def _crop_boxes(boxes, x1: int, y1: int, size: tuple[int, int]):
    """Boxes translated by ``(-x1, -y1)`` and clipped to ``size`` (h, w); same type back."""
    if hasattr(boxes, 'translate_') and hasattr(boxes, 'clip_'):  # mmdet BaseBoxes
        out = boxes.clone()
        out.translate_([-x1, -y1])
        out.clip_(size)
        return out
    t = torch.as_tensor(boxes).clone().float()
    if t.dim() != 2 or t.shape[-1] != 4:
        raise ValueError(f'gt_instances.bboxes must be mmdet boxes or an (N, 4) x1y1x2y2 '
                         f'tensor, got shape {tuple(t.shape)}.')
    t[:, 0::2] = (t[:, 0::2] - x1).clamp(0, size[1])
    t[:, 1::2] = (t[:, 1::2] - y1).clamp(0, size[0])
    return t


def _box_areas(boxes) -> torch.Tensor:
    t = _box_tensor(boxes).float()
    return (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)


def _mask_areas(masks) -> torch.Tensor:
    if isinstance(masks, torch.Tensor):
        return masks.flatten(1).float().sum(1)
    return torch.as_tensor(np.asarray(masks.areas, dtype=np.float64)).float()


def _crop_masks(masks, box: tuple[int, int, int, int]):
    x1, y1, x2, y2 = box
    if isinstance(masks, torch.Tensor):
        return masks[..., y1:y2, x1:x2]
    if masks.height < y2 or masks.width < x2:
        raise ValueError(f'Instance masks of {masks.height}x{masks.width} px do not cover the '
                         f'window pixel box {box}: were the windows sampled on another image '
                         'size than the masks?')
    return masks.crop(np.array(box))


def crop_instances(instances: InstanceData, window: Sequence[int], patch_size: int,
                   rule: BorderRule | dict | None = None,
                   ignore_all: bool = False) -> tuple[InstanceData, InstanceData]:
    """Crop ``instances`` to ``window``; returns ``(kept, dropped)``.

    ``kept`` follow the border rule; ``dropped`` are the others with something inside the
    window. With ``ignore_all`` (crowd / ignore regions) every instance with any visible part
    is kept and ``dropped`` is empty.
    """
    rule = BorderRule.build(rule)
    x1, y1, x2, y2 = box = window_pixel_box(window, patch_size)
    size = (y2 - y1, x2 - x1)
    new = InstanceData(metainfo=instances.metainfo)
    for key, value in instances.items():
        new[key] = value
    n = len(instances)
    if 'masks' in instances:
        full = _mask_areas(instances.masks)
        new.masks = _crop_masks(instances.masks, box)
        visible = _mask_areas(new.masks)
    if 'bboxes' in instances:
        new.bboxes = _crop_boxes(instances.bboxes, x1, y1, size)
        if 'masks' not in instances:
            full, visible = _box_areas(instances.bboxes), _box_areas(new.bboxes)
    if 'masks' not in instances and 'bboxes' not in instances:
        if n:
            raise ValueError('gt_instances to crop need bboxes or masks; got fields '
                             f'{sorted(instances.keys())}.')
        return new, new
    if n == 0:
        return new, new
    present = visible > 0
    if ignore_all:
        return new[present], new[torch.zeros(n, dtype=torch.bool)]
    denom = torch.minimum(full, torch.full_like(full, float(size[0] * size[1])))
    keep = present & (visible >= rule.min_visible_area) & \
        (visible >= rule.min_visible_fraction * denom)
    return new[keep], new[present & ~keep]


def _cat_instances(a: InstanceData, b: InstanceData) -> InstanceData:
    if len(b) == 0:
        return a
    if len(a) == 0 and set(a.keys()) != set(b.keys()):
        return b
    if set(a.keys()) != set(b.keys()):
        raise ValueError(f'Cannot add dropped instances (fields {sorted(b.keys())}) to '
                         f'ignored_instances (fields {sorted(a.keys())}); give both the same '
                         "fields or use border_rule=dict(dropped='discard').")
    return InstanceData.cat([a, b])


def crop_sample_to_window(sample, window: Sequence[int], patch_size: int,
                          rule: BorderRule | dict | None = None):
    """A new data sample (same class: mmseg ``SegDataSample``, mmdet ``DetDataSample``)
    holding ``sample``'s targets cropped to ``window`` = ``(top, left, h, w)`` tokens.

    See the module docstring for what is cropped and the border rule (``rule``: a
    :class:`BorderRule`, its fields as a dict, or ``None`` for the defaults). Fields other
    than ``gt_*`` pixel maps, ``gt_instances`` and ``ignored_instances`` are not carried.
    """
    rule = BorderRule.build(rule)
    t, left, h, w = (int(v) for v in window)
    p = int(patch_size)
    x1, y1, x2, y2 = window_pixel_box(window, p)
    size = (y2 - y1, x2 - x1)
    new = sample.__class__()
    meta = dict(sample.metainfo)
    meta.update(img_shape=size, pad_shape=size, ori_shape=size, batch_input_shape=size,
                winwin_crop=(t, left, h, w))
    meta.pop('flip', None)
    new.set_metainfo(meta)
    for key in sample.keys():
        value = getattr(sample, key)
        if key.startswith('gt_') and isinstance(value, PixelData):
            data = {}
            for field, arr in value.items():
                if arr.shape[-2] < y2 or arr.shape[-1] < x2:
                    raise ValueError(f'{key}.{field} of size {tuple(arr.shape[-2:])} does not '
                                     f'cover the window pixel box (x1, y1, x2, y2) = '
                                     f'{(x1, y1, x2, y2)}: were the windows sampled on another '
                                     'image size than the targets?')
                data[field] = arr[..., y1:y2, x1:x2]
            new.set_data({key: PixelData(metainfo=value.metainfo, **data)})
    dropped = None
    if 'gt_instances' in sample:
        kept, dropped = crop_instances(sample.gt_instances, window, p, rule)
        new.gt_instances = kept
    if 'ignored_instances' in sample:
        ignored, _ = crop_instances(sample.ignored_instances, window, p, rule, ignore_all=True)
        new.ignored_instances = ignored
    if dropped is not None and rule.dropped == 'ignore' and len(dropped):
        if 'ignored_instances' in new:
            new.ignored_instances = _cat_instances(new.ignored_instances, dropped)
        else:
            new.ignored_instances = dropped
    elif dropped is not None and 'ignored_instances' not in new:
        new.ignored_instances = dropped[torch.zeros(len(dropped), dtype=torch.bool)]
    return new
