"""Checks of one batch as the dataloader yields it (before it moves to the device).

The images are the per-sample ``(C, H, W)`` tensors of ``data['inputs']`` and each error
names the sample's ``img_path`` (from its metainfo) and says how to fix the input. The
checks run on the host tensors the dataloader made, so they cost no device sync; the
non-finite check runs only on floating-point images (uint8 images cannot hold NaN / inf).
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ['check_image_batch', 'check_label_range', 'sample_name']


def sample_name(samples: Sequence | None, i: int, key: str = 'img_path') -> str:
    """``img_path`` (or ``key``) of sample ``i`` from its metainfo, else ``'sample i'``."""
    if samples is not None and i < len(samples):
        meta = getattr(samples[i], 'metainfo', {}) or {}
        if meta.get(key):
            return str(meta[key])
    return f'sample {i} of the batch'


def _as_list(inputs) -> list:
    if isinstance(inputs, torch.Tensor):
        return list(inputs) if inputs.dim() == 4 else [inputs]
    return list(inputs)


def check_image_batch(inputs, samples: Sequence | None = None, channels: int | None = None,
                      max_size: Sequence[int] | None = None, who: str = 'data preprocessor',
                      image_dims: int = 3) -> None:
    """Raise a ``ValueError`` naming the image and the fix when an image of the batch

    * has 0 pixels (an empty tensor, or a side of length 0),
    * has a channel count other than ``channels`` (e.g. RGBA given to an RGB model),
    * holds NaN or inf values (it says how many), or
    * is larger than ``max_size`` ``(h, w)``, the fixed size the batch is padded to.

    ``image_dims`` is 3 for ``(C, H, W)`` images, 4 for ``(2, C, H, W)`` image pairs.
    """
    for i, x in enumerate(_as_list(inputs)):
        if not isinstance(x, torch.Tensor):
            continue
        name = sample_name(samples, i, 'img_path' if image_dims == 3 else 'img1_path')
        if x.dim() != image_dims:
            continue  # the host's own shape message is clear
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if x.numel() == 0:
            raise ValueError(f'Image {name} has 0 pixels (tensor shape {tuple(x.shape)}). '
                             'Check the file and the transforms before the ' + who +
                             ' (a crop or resize to size 0), or drop the image.')
        c = int(x.shape[-3])
        if channels is not None and c != channels:
            raise ValueError(
                f'Image {name} has {c} channels but the {who} and the model expect '
                f'{channels} (mean/std have {channels} values). Load it as '
                f"{channels}-channel colour (LoadImageFromFile color_type='color'), or give "
                f'mean/std with {c} values and a backbone with in_channels={c}.')
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            if bad:
                raise ValueError(
                    f'Image {name} has {bad} non-finite values (NaN or inf) of {x.numel()}; '
                    'one such pixel turns every output of the model into NaN. Fix the file or '
                    'the transform that produced them (e.g. a division by zero in a '
                    'normalisation), or drop the image.')
        if max_size is not None and (h > max_size[0] or w > max_size[1]):
            raise ValueError(
                f'Image {name} is {h}x{w} px, larger than the {who} size='
                f'{tuple(max_size)} that every training image of a batch is padded to. '
                f'Crop or resize it in the pipeline (e.g. RandomCrop(crop_size='
                f'{tuple(max_size)})) or raise data_preprocessor.size.')


def check_label_range(samples: Sequence | None, num_classes: int, ignore_index: int = 255,
                      key: str = 'gt_sem_seg') -> None:
    """Raise a ``ValueError`` naming the annotation file, the value and the class count
    when a label map holds a value outside ``0 .. num_classes - 1`` other than
    ``ignore_index``."""
    for i, s in enumerate(samples or []):
        seg = getattr(s, key, None) if hasattr(s, key) else None
        data = getattr(seg, 'data', None)
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            continue
        outside = ((data < 0) | (data >= num_classes)) & (data != ignore_index)
        if bool(outside.any()):
            bad = torch.unique(data[outside])
            name = sample_name(samples, i, 'seg_map_path')
            shown = ', '.join(str(int(v)) for v in bad[:5])
            raise ValueError(
                f'Label map {name} (image {sample_name(samples, i)}) holds the value(s) '
                f'{shown}, outside 0..{num_classes - 1} for the {num_classes} classes of the '
                f'model (ignore_index {ignore_index} is allowed). Check reduce_zero_label and '
                "the dataset's label values, or set decode_head.num_classes.")
