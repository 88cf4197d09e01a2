"""Scenes for generated COCO data whose object classes need (or do not need) a distant cue.

Two tasks with the same geometry, written by ``generate_coco(..., task=...)``:

* ``context``: every image shows one coloured **beacon** (a ``beacon`` x ``beacon`` pixel
  square, red or blue) and 2-4 grey objects (squares and discs). The objects of all classes
  are drawn the same way (same grey level, same noise), so their pixels carry no class
  information; an object's class is the colour of the image's beacon (``red_scene_object``
  or ``blue_scene_object``). Every object's box lies at least ``cue_gap`` pixels away from
  the beacon's box along x or y (Chebyshev gap), so with ``cue_gap`` >= the side of a
  training window, no window (nor any crop of that side) shows an object together with the
  beacon: naming the object needs context from beyond one window.
* ``local``: the same layout, but each object is filled with its own class colour
  (``red_object`` / ``blue_object``) and the beacon's colour is drawn independently of the
  objects, so it carries no information: the class is visible in the object itself.

Stuff: one ``background`` segment (everything that is not an object, the beacon included),
so the panoptic files stay complete. Category ids are not contiguous (1, 3; stuff 5).
"""
from __future__ import annotations

import numpy as np

__all__ = ['CUE_TASKS', 'CUE_COLORS', 'cue_categories', 'cue_metainfo', 'cue_scene']

CUE_COLORS = ((220, 40, 40), (40, 80, 230))  # RGB: red, blue
CUE_TASKS = {
    'context': ('red_scene_object', 'blue_scene_object'),
    'local': ('red_object', 'blue_object'),
}
OBJECT_GREY = 170.0   # context task: every object's fill, whatever its class
BACKGROUND_GREY = 80.0


def cue_categories(task: str) -> list[dict]:
    """COCO panoptic categories (things with ``isthing=1``, then the stuff) of a cue task."""
    if task not in CUE_TASKS:
        raise ValueError(f'Unknown cue task {task!r}; choose one of {sorted(CUE_TASKS)}.')
    things = [dict(id=1 + 2 * k, name=name, supercategory='object', isthing=1,
                   color=list(CUE_COLORS[k])) for k, name in enumerate(CUE_TASKS[task])]
    return things + [dict(id=5, name='background', supercategory='background', isthing=0,
                          color=[90, 90, 90])]


def cue_metainfo(task: str) -> dict:
    """mmdet dataset ``metainfo`` of a cue task (instances: ``classes`` = the things)."""
    cats = cue_categories(task)
    things = tuple(c['name'] for c in cats if c['isthing'])
    stuff = tuple(c['name'] for c in cats if not c['isthing'])
    return dict(classes=things, thing_classes=things, stuff_classes=stuff,
                palette=[tuple(c['color']) for c in cats if c['isthing']])


def _smooth_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-frequency texture (unit-ish amplitude): 8x8-pixel noise cells, bilinear."""
    import cv2
    small = rng.normal(0, 1, (max(2, h // 8), max(2, w // 8))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def _gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Chebyshev gap in pixels between two boxes (x0, y0, x1, y1); 0 when they touch."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return max(dx, dy)


def cue_scene(rng: np.random.Generator, h: int, w: int, task: str, polygon, cue_gap: int,
              beacon: int = 16, num_objects: tuple[int, int] = (2, 4),
              radius: tuple[float, float] = (10.0, 18.0)):
    """Render one scene of a cue task.

    Args:
        rng: the generator (the scene is a deterministic function of its state).
        h, w: image size in pixels.
        task: ``'context'`` or ``'local'``.
        polygon: ``polygon(kind, cx, cy, r) -> [x0, y0, ...]``, the COCO polygon of a
            ``'box'`` or ``'disc'`` (shared with the default scenes).
        cue_gap: least Chebyshev gap in pixels between the beacon's box and every object's.
        beacon: beacon side in pixels.

    Returns:
        (image (H, W, 3) uint8 RGB, panoptic ids (H, W), segments, instances) in the form
        of ``coco._scene``; instances carry ``mask`` (bool) for the caller's areas / boxes.
    """
    from pycocotools import mask as mask_utils
    cats = cue_categories(task)
    thing_ids = [c['id'] for c in cats if c['isthing']]
    for _scene_try in range(50):
        scene = int(rng.integers(2))
        by, bx = int(rng.integers(0, h - beacon + 1)), int(rng.integers(0, w - beacon + 1))
        beacon_box = (bx, by, bx + beacon, by + beacon)
        occupied = np.zeros((h, w), bool)
        objects = []
        for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1))):
            kind = 'box' if rng.random() < 0.5 else 'disc'
            r = float(rng.uniform(*radius))
            for _try in range(30):
                cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
                if _gap((cx - r, cy - r, cx + r, cy + r), beacon_box) < cue_gap:
                    continue
                poly = polygon(kind, cx, cy, r)
                m = mask_utils.decode(mask_utils.merge(
                    mask_utils.frPyObjects([poly], h, w))).astype(bool)
                if m.any() and not (m & occupied).any():
                    break
            else:
                continue
            occupied |= m
            cls = scene if task == 'context' else int(rng.integers(2))
            objects.append((cls, poly, m))
        if objects:
            break
    else:
        raise ValueError(f'Could not place an object {cue_gap} px away from the beacon in a '
                         f'{h}x{w} image; use a larger image or a smaller cue_gap.')
    beacon_color = scene if task == 'context' else int(rng.integers(2))

    img = BACKGROUND_GREY + 12.0 * _smooth_noise(rng, h, w)
    img = np.repeat(img[..., None], 3, axis=2)
    for cls, _poly, m in objects:
        fill = OBJECT_GREY if task == 'context' else np.array(CUE_COLORS[cls], np.float64)
        img[m] = fill
    img += rng.normal(0, 8, img.shape)
    img[by:by + beacon, bx:bx + beacon] = CUE_COLORS[beacon_color]

    ids = np.full((h, w), 1, np.int64)  # segment id 1: the background stuff
    segments = [dict(id=1, category_id=5, iscrowd=0)]
    instances = []
    for k, (cls, poly, m) in enumerate(objects):
        sid = (k + 2) * 70001 % (256 ** 3 - 1) + 1  # spread over R, G and B
        ids[m] = sid
        segments.append(dict(id=sid, category_id=thing_ids[cls], iscrowd=0))
        instances.append(dict(category_id=thing_ids[cls], segmentation=[poly], iscrowd=0,
                              mask=m))
    return np.clip(img, 0, 255).astype(np.uint8), ids, segments, instances
