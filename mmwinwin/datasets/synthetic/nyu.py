"""Small NYU-Depth-v2-layout depth datasets with depth a network can learn.

Each image is a simple room seen by a pinhole camera: a back wall at depth ``D``
above a horizon row, a floor whose depth falls as ``c / (y - horizon)`` below it
(clipped to the wall), and a few boxes standing on the floor, each at the floor depth
of its base and with an apparent size proportional to ``1 / depth``. Colours follow
an aerial-perspective model (``albedo * exp(-d / 6) + haze * (1 - exp(-d / 6))``), so
brightness, vertical position, the horizon and object size all carry depth -- cues
spread over the whole image, as in real rooms.

Written in the layout mmseg's ``NYUDataset`` reads (``LoadDepthAnnotation`` with
``depth_rescale_factor=1e-3``)::

    root/images/{train,test}/<scene>_%05d.jpg          RGB
    root/annotations/{train,test}/<scene>_%05d.png     uint16 depth in millimetres
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Sequence

import cv2
import numpy as np

__all__ = ['generate_nyu']

_SCENES = ('bedroom', 'kitchen', 'living_room', 'office')


def _render(rng: np.random.Generator, h: int, w: int, max_depth: float):
    horizon = int(rng.uniform(0.35, 0.55) * h)
    wall = float(rng.uniform(4.0, max_depth * 0.9))
    ys = np.arange(h, dtype=np.float32)[:, None]
    c = 1.0 * (h - horizon)  # floor depth 1 m at the bottom row
    floor = c / np.maximum(ys - horizon, 1e-3)
    depth = np.where(ys > horizon, np.minimum(floor, wall), wall) * np.ones((1, w), np.float32)
    albedo = np.empty((h, w, 3), np.float32)
    albedo[:] = rng.uniform(90, 200, 3)  # wall colour
    floor_mask = (depth < wall - 1e-6)
    albedo[floor_mask] = rng.uniform(60, 160, 3)
    # stripes on the floor whose spacing shrinks with depth (texture gradient)
    stripes = (np.sin(np.arange(w)[None, :] * 0.0 + 40.0 / depth) > 0).astype(np.float32)
    albedo[floor_mask] *= (0.85 + 0.15 * stripes[floor_mask])[:, None]

    for _ in range(int(rng.integers(2, 6))):
        base = int(rng.integers(horizon + 4, h))
        d = float(c / max(base - horizon, 1e-3))
        if d >= wall:
            continue
        size = int(np.clip(0.9 * h / d * rng.uniform(0.2, 0.45), 4, h))
        width = int(size * rng.uniform(0.6, 1.6))
        x0 = int(rng.integers(0, max(1, w - width)))
        y0 = max(0, base - size)
        region = (slice(y0, base), slice(x0, x0 + width))
        closer = depth[region] > d
        depth[region] = np.where(closer, d, depth[region])
        albedo[region][closer] = rng.uniform(40, 240, 3)
    att = np.exp(-depth / 6.0)[..., None]
    img = albedo * att + 200.0 * (1 - att) + rng.normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), depth


def generate_nyu(root: str, num_train: int = 16, num_val: int = 4,
                 img_size: int | Sequence[int] = (480, 640), max_depth: float = 10.0,
                 seed: int = 0) -> str:
    """Write a synthetic dataset in mmseg's NYU layout under ``root``; returns ``root``.

    Args:
        img_size: (height, width), or one int for squares.
        max_depth: depths lie in (1 m, max_depth); stored in millimetres (uint16).
        seed: the dataset is a deterministic function of the arguments.
    """
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if min(h, w) < 32:
        raise ValueError(f'img_size {(h, w)} is too small; use at least 32 x 32 pixels.')
    if not 2.0 < max_depth <= 65.0:
        raise ValueError(f'max_depth must be in (2, 65] metres (uint16 mm), got {max_depth}.')
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('test', num_val)):
        img_dir, ann_dir = osp.join(root, 'images', split), osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(count):
            img, depth = _render(rng, h, w, max_depth)
            name = f'{_SCENES[i % len(_SCENES)]}_{i + 1:05d}'
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), img[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(ann_dir, name + '.png'),
                        np.round(depth * 1000).astype(np.uint16))
    return root
