"""Generated COCO data in the real on-disk formats, for tests and CPU demos.

Writes, for splits ``train2017`` and ``val2017``:

* ``{split}/*.jpg`` images;
* ``annotations/instances_{split}.json``: COCO instances (polygons, boxes, areas,
  ``iscrowd``; a crowd region as RLE when ``crowd=True``);
* ``annotations/panoptic_{split}.json`` + ``annotations/panoptic_{split}/*.png``: COCO
  panoptic (PNG colour = segment id R + 256 G + 256^2 B, ``segments_info``,
  categories with ``isthing``).

The scenes have learnable structure: two stuff classes (``sky`` above a horizon,
``ground`` below, each its own colour) and two thing classes (red ``box`` squares and
green ``disc`` circles, never overlapping), with pixel noise. Category ids are not
contiguous (1, 3, 5, 7), as in COCO, so the id mapping is exercised.

``task='context'`` / ``'local'`` write instead the two tasks of :mod:`.coco_cue` (object
classes that need a cue beyond one Win-Win window, or that do not), in the same formats.
"""
from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np

from .coco_cue import CUE_TASKS, cue_categories, cue_scene

__all__ = ['COCO_SYNTH_CATEGORIES', 'COCO_SYNTH_METAINFO', 'generate_coco']

COCO_SYNTH_CATEGORIES = [
    dict(id=1, name='box', supercategory='shape', isthing=1, color=[220, 20, 60]),
    dict(id=3, name='disc', supercategory='shape', isthing=1, color=[20, 200, 60]),
    dict(id=5, name='sky', supercategory='background', isthing=0, color=[70, 130, 230]),
    dict(id=7, name='ground', supercategory='background', isthing=0, color=[140, 100, 50]),
]
COCO_SYNTH_METAINFO = dict(
    classes=('box', 'disc', 'sky', 'ground'), thing_classes=('box', 'disc'),
    stuff_classes=('sky', 'ground'),
    palette=[tuple(c['color']) for c in COCO_SYNTH_CATEGORIES])


def _polygon(kind: str, cx: float, cy: float, r: float) -> list[float]:
    if kind == 'box':
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    else:
        ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = list(zip(cx + r * np.cos(ang), cy + r * np.sin(ang)))
    return [float(round(v, 2)) for p in pts for v in p]


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def _scene(rng: np.random.Generator, h: int, w: int, crowd: bool):
    """Return image (H, W, 3) uint8, panoptic ids, segments, instance annotations."""
    from pycocotools import mask as mask_utils
    ids = np.zeros((h, w), np.int64)
    horizon = int(rng.integers(h // 3, 2 * h // 3))
    segments, instances = [], []
    next_id = [0]

    def new_id():
        next_id[0] += 1
        return next_id[0] * 70001 % (256 ** 3 - 1) + 1  # spread over R, G and B

    for cat, rows in ((5, slice(0, horizon)), (7, slice(horizon, h))):
        sid = new_id()
        ids[rows] = sid
        segments.append(dict(id=sid, category_id=cat, iscrowd=0))
    occupied = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(2, 5))):
        kind = 'box' if rng.random() < 0.5 else 'disc'
        r = float(rng.uniform(0.08, 0.16) * min(h, w))
        for _try in range(20):
            cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
            poly = _polygon(kind, cx, cy, r)
            rle = mask_utils.frPyObjects([poly], h, w)
            m = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
            if m.any() and not (m & occupied).any():
                break
        else:
            continue
        occupied |= m
        sid = new_id()
        ids[m] = sid
        cat = 1 if kind == 'box' else 3
        segments.append(dict(id=sid, category_id=cat, iscrowd=0))
        instances.append(dict(category_id=cat, segmentation=[poly], iscrowd=0, mask=m))
    if crowd:  # a crowd of small discs in a free corner band, annotated as one RLE
        m = np.zeros((h, w), bool)
        for k in range(4):
            yy, xx = np.mgrid[:h, :w]
            m |= (yy - (h - 4)) ** 2 + (xx - (4 + 5 * k)) ** 2 <= 4
        m &= ~occupied
        if m.any():
            sid = new_id()
            ids[m] = sid
            segments.append(dict(id=sid, category_id=3, iscrowd=1))
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            instances.append(dict(category_id=3, segmentation=rle, iscrowd=1, mask=m))
    colors = {c['id']: np.array(c['color'], np.float64) for c in COCO_SYNTH_CATEGORIES}
    img = np.zeros((h, w, 3), np.float64)
    for s in segments:
        img[ids == s['id']] = colors[s['category_id']]
    img += rng.normal(0, 12, img.shape)
    _add_areas_and_boxes(ids, segments, instances)
    return np.clip(img, 0, 255).astype(np.uint8), ids, segments, instances


def _add_areas_and_boxes(ids: np.ndarray, segments: list[dict], instances: list[dict]) -> None:
    """Fill ``area`` and ``bbox`` of panoptic segments and instances (whose ``mask`` goes)."""
    for s in segments:
        mask = ids == s['id']
        s['area'] = int(mask.sum())
        s['bbox'] = _bbox(mask)
    for ins in instances:
        m = ins.pop('mask')
        ins['area'] = int(m.sum())
        ins['bbox'] = _bbox(m)


def generate_coco(out_dir: str, num_train: int = 4, num_val: int = 2,
                  img_size: tuple[int, int] = (96, 128), crowd: bool = True,
                  seed: int = 0, task: str = 'shapes', cue_gap: int = 64) -> dict[str, str]:
    """Write a small COCO instances + panoptic dataset under ``out_dir``.

    Args:
        out_dir: dataset root (``train2017/``, ``val2017/``, ``annotations/``).
        num_train / num_val: number of images per split.
        img_size: (height, width) of every image.
        crowd: add a crowd region (``iscrowd=1``) to every other validation image
            (``task='shapes'`` only).
        seed: random seed (the output is deterministic).
        task: ``'shapes'`` (the default scenes above: sky, ground, red boxes, green discs),
            or a cue task of :mod:`.coco_cue`: ``'context'`` (identical grey objects whose
            class is the colour of a beacon at least ``cue_gap`` pixels away) or ``'local'``
            (the same layout, the class is the object's own colour).
        cue_gap: cue tasks only: least gap in pixels between the beacon and every object
            (at least a training window's side, so that no window shows both).

    Returns:
        paths of the written annotation files.
    """
    import mmcv
    from ...fileio.panoptic import write_panoptic_png
    if num_train < 1 or num_val < 1:
        raise ValueError(f'Need at least one image per split, got num_train={num_train}, '
                         f'num_val={num_val}.')
    h, w = img_size
    if h < 32 or w < 32:
        raise ValueError(f'img_size {img_size} is too small; use at least 32 x 32.')
    if task != 'shapes' and task not in CUE_TASKS:
        raise ValueError(f'Unknown task {task!r}; choose one of '
                         f"{['shapes'] + sorted(CUE_TASKS)}.")
    if task != 'shapes' and max(h, w) < 2 * 16 + cue_gap + 2:
        raise ValueError(f'img_size {img_size} has no room for an object {cue_gap} px away '
                         'from the beacon; use a larger image or a smaller cue_gap.')
    categories = COCO_SYNTH_CATEGORIES if task == 'shapes' else cue_categories(task)
    rng = np.random.default_rng(seed)
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    written = {}
    img_id, ann_id = 0, 0
    for split, n in (('train2017', num_train), ('val2017', num_val)):
        img_dir = osp.join(out_dir, split)
        pan_dir = osp.join(ann_dir, f'panoptic_{split}')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(pan_dir, exist_ok=True)
        images, inst_anns, pan_anns = [], [], []
        for i in range(n):
            img_id += 1
            name = f'{img_id:012d}'
            if task == 'shapes':
                img, ids, segments, instances = _scene(
                    rng, h, w, crowd=crowd and split == 'val2017' and i % 2 == 0)
            else:
                img, ids, segments, instances = cue_scene(rng, h, w, task, _polygon, cue_gap)
                _add_areas_and_boxes(ids, segments, instances)
            mmcv.imwrite(img[..., ::-1], osp.join(img_dir, name + '.jpg'), [1, 95])
            write_panoptic_png(ids, osp.join(pan_dir, name + '.png'))
            images.append(dict(id=img_id, file_name=name + '.jpg', height=h, width=w))
            for ins in instances:
                ann_id += 1
                inst_anns.append(dict(id=ann_id, image_id=img_id, **ins))
            pan_anns.append(dict(image_id=img_id, file_name=name + '.png',
                                 segments_info=segments))
        things = [{k: c[k] for k in ('id', 'name', 'supercategory')}
                  for c in categories if c['isthing']]
        inst_path = osp.join(ann_dir, f'instances_{split}.json')
        pan_path = osp.join(ann_dir, f'panoptic_{split}.json')
        with open(inst_path, 'w') as f:
            json.dump(dict(images=images, annotations=inst_anns, categories=things), f)
        with open(pan_path, 'w') as f:
            json.dump(dict(images=images, annotations=pan_anns,
                           categories=categories), f)
        written[f'instances_{split}'] = inst_path
        written[f'panoptic_{split}'] = pan_path
    return written
