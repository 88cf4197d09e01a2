"""Window mosaics: several Win-Win windows laid side by side as one image for the heads.

A query-based head (Mask2Former) trained on single windows sees few objects per image; on
the generated ``local`` data a 4x4-token window rarely holds two things of the same class,
while most whole test images do, and the heads never learn to split such twins
(``mmwinwin.experiments.winwin_m2f_gap``; ``docs/winwin.md``, "Mask2Former's gap on the
local task"). ``WinWinMask2Former(head_mosaic=(rows, cols))`` gives the heads mosaics of
``rows x cols`` equal-size windows of the batch instead (the windows' cropped targets placed
the same way; an object cut by two windows of the mosaic is two targets, as in the windows
themselves):

* :func:`mosaic_features`: ``(n, C, h, w)`` maps of ``n = rows * cols`` windows as one
  ``(1, C, rows * h, cols * w)`` map, row-major;
* :func:`mosaic_samples`: their cropped samples (``crop_sample_to_window``) as one sample:
  ``gt_instances`` (masks, boxes, labels, other per-instance fields) and
  ``ignored_instances`` translated to each window's cell, ``gt_*`` pixel maps tiled.
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData

__all__ = ['mosaic_features', 'mosaic_samples', 'mosaic_groups']


def mosaic_groups(n: int, rows: int, cols: int) -> list[tuple[int, int, int]]:
    """``(start, rows, cols)`` per mosaic of ``n`` windows: full ``rows x cols`` mosaics, then
    the rest as one ``1 x r`` row."""
    k = rows * cols
    out = [(i, rows, cols) for i in range(0, n - n % k, k)]
    if n % k:
        out.append((n - n % k, 1, n % k))
    return out


def mosaic_features(feats: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``(rows * cols, C, h, w)`` -> ``(1, C, rows * h, cols * w)``, windows row-major."""
    n, c, h, w = feats.shape
    if n != rows * cols:
        raise ValueError(f'A {rows}x{cols} mosaic needs {rows * cols} windows, got {n}.')
    return feats.view(rows, cols, c, h, w).permute(2, 0, 3, 1, 4).reshape(1, c, rows * h,
                                                                           cols * w)


def _place_masks(masks, size: tuple[int, int], top: int, left: int):
    """Instance masks of one window placed at ``(top, left)`` of a ``size`` canvas."""
    if isinstance(masks, torch.Tensor):
        out = masks.new_zeros(masks.shape[:-2] + size)
        out[..., top:top + masks.shape[-2], left:left + masks.shape[-1]] = masks
        return out
    arr = masks.to_ndarray()
    out = np.zeros((len(arr),) + size, dtype=arr.dtype)
    out[:, top:top + arr.shape[-2], left:left + arr.shape[-1]] = arr
    return type(masks)(out, *size)


def _place_instances(parts: list, size: tuple[int, int]) -> InstanceData | None:
    """Per-window InstanceData (with their ``(top, left)`` cell offsets) as one."""
    placed = []
    for inst, (top, left) in parts:
        new = InstanceData(metainfo=inst.metainfo)
        for key, value in inst.items():
            if key == 'masks':
                value = _place_masks(value, size, top, left)
            elif key == 'bboxes':
                if hasattr(value, 'translate_'):
                    value = value.clone()
                    value.translate_([left, top])
                else:
                    value = torch.as_tensor(value).clone().float()
                    value[:, 0::2] += left
                    value[:, 1::2] += top
            new[key] = value
        placed.append(new)
    nonempty = [p for p in placed if len(p)]
    if not nonempty:
        return placed[0] if placed else None
    keys = [set(p.keys()) for p in nonempty]
    if any(k != keys[0] for k in keys):
        raise ValueError('The windows of a mosaic carry different instance fields: '
                         f'{sorted(map(sorted, keys))}.')
    return nonempty[0] if len(nonempty) == 1 else InstanceData.cat(nonempty)


def mosaic_samples(samples: list, rows: int, cols: int):
    """One data sample of ``rows * cols`` cropped window samples (equal sizes), row-major
    (see the module docstring); its metainfo is the first window's, with the mosaic's size
    as ``img_shape`` / ``pad_shape`` / ``ori_shape`` / ``batch_input_shape`` and
    ``winwin_mosaic = (rows, cols)``."""
    if len(samples) != rows * cols:
        raise ValueError(f'A {rows}x{cols} mosaic needs {rows * cols} windows, '
                         f'got {len(samples)}.')
    h, w = (int(v) for v in samples[0].metainfo['img_shape'][:2])
    if any(tuple(s.metainfo['img_shape'][:2]) != (h, w) for s in samples):
        raise ValueError('The windows of a mosaic must have one size.')
    size = (rows * h, cols * w)
    cells = [(r * h, c * w) for r in range(rows) for c in range(cols)]
    new = samples[0].__class__()
    meta = dict(samples[0].metainfo)
    meta.update(img_shape=size, pad_shape=size, ori_shape=size, batch_input_shape=size,
                winwin_mosaic=(rows, cols))
    meta.pop('winwin_crop', None)  # a mosaic is no single window of one image
    new.set_metainfo(meta)
    for key in samples[0].keys():
        value = getattr(samples[0], key)
        if key.startswith('gt_') and isinstance(value, PixelData):
            data = {}
            for field in value.keys():
                arrs = [getattr(getattr(s, key), field) for s in samples]
                grid = [torch.cat(arrs[r * cols:(r + 1) * cols], -1) for r in range(rows)]
                data[field] = torch.cat(grid, -2)
            new.set_data({key: PixelData(metainfo=value.metainfo, **data)})
        elif key in ('gt_instances', 'ignored_instances'):
            placed = _place_instances([(getattr(s, key), cell) for s, cell in
                                       zip(samples, cells)], size)
            if placed is not None:
                setattr(new, key, placed)
    return new
