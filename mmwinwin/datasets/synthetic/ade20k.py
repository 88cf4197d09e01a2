"""Small ADE20K-layout datasets whose labels need long-range context.

Every image belongs to one of ``num_scenes`` scenes. The scene is shown *only* by a
small coloured beacon square placed somewhere in the image; the objects (grey,
textured discs and squares) look the same in every scene, but their class is
``(scene, shape)``. A model that sees an object without the beacon cannot name it,
so a network must relate tokens far apart: a low-resolution crop that misses the
beacon is ambiguous, while windows of the same image can be related through
attention (the Win-Win paper's point).

Written in the ADEChallengeData2016 layout that mmseg's ``ADE20KDataset`` reads::

    root/images/{training,validation}/ADE_{train,val}_%08d.jpg
    root/annotations/{training,validation}/ADE_{train,val}_%08d.png

Label values (8-bit PNG): 0 = "other" (ignored with ``reduce_zero_label=True``, unused),
1 = background, 2 + scene * 2 + shape for objects (shape 0 = disc, 1 = square). With
``reduce_zero_label=True`` they become classes 0 .. 2 * num_scenes.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Sequence

import cv2
import numpy as np

__all__ = ['generate_ade20k', 'synthetic_ade20k_classes', 'SCENE_COLORS']

SCENE_COLORS = ((220, 40, 40), (40, 200, 40), (40, 80, 230), (230, 200, 30))  # RGB


def synthetic_ade20k_classes(num_scenes: int = 3) -> list[str]:
    """Class names after ``reduce_zero_label`` (index 0 = background)."""
    names = ['background']
    for s in range(num_scenes):
        names += [f'scene{s}_disc', f'scene{s}_square']
    return names


def _texture(rng: np.random.Generator, h: int, w: int, base: float, amp: float) -> np.ndarray:
    """Smooth random texture: upsampled low-resolution noise."""
    small = rng.normal(0, 1, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return base + amp * big


def _render(rng: np.random.Generator, height: int, width: int, num_scenes: int,
            num_objects: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    side = min(height, width)
    img = np.repeat(_texture(rng, height, width, 110.0, 25.0)[..., None], 3, axis=2)
    img += rng.normal(0, 4, img.shape)  # keep a little pixel noise
    label = np.ones((height, width), np.uint8)
    scene = int(rng.integers(num_scenes))

    # beacon: the only cue of the scene, a square in a random place
    b = max(12, int(round(side * 0.08)))
    by, bx = int(rng.integers(0, height - b + 1)), int(rng.integers(0, width - b + 1))
    occupied = np.zeros((height, width), bool)
    occupied[max(0, by - b // 2):by + b + b // 2, max(0, bx - b // 2):bx + b + b // 2] = True

    tex = _texture(rng, height, width, 170.0, 20.0)
    n = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for _ in range(n):
        r = int(rng.integers(max(6, side // 18), max(8, side // 8) + 1))
        for _attempt in range(20):
            cy, cx = int(rng.integers(r, height - r)), int(rng.integers(r, width - r))
            if not occupied[cy - r:cy + r, cx - r:cx + r].any():
                break
        else:
            continue
        shape = int(rng.integers(2))
        mask = np.zeros((height, width), np.uint8)
        if shape == 0:
            cv2.circle(mask, (cx, cy), r, 1, -1)
        else:
            cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
        m = mask.astype(bool)
        img[m] = tex[m, None]
        label[m] = 2 + scene * 2 + shape
        occupied[cy - r:cy + r, cx - r:cx + r] = True

    img[by:by + b, bx:bx + b] = SCENE_COLORS[scene % len(SCENE_COLORS)]
    return np.clip(img, 0, 255).astype(np.uint8), label


def generate_ade20k(root: str, num_train: int = 16, num_val: int = 4,
                    img_size: int | Sequence[int] = (512, 512), num_scenes: int = 3,
                    num_objects: tuple[int, int] = (4, 8), seed: int = 0) -> str:
    """Write a synthetic dataset in the ADE20K layout under ``root``; returns ``root``.

    Args:
        img_size: (height, width) of every image, or one int for squares.
        num_scenes: scenes (1 to 4); classes are background + 2 per scene.
        num_objects: (min, max) objects per image.
        seed: the whole dataset is a deterministic function of the arguments.
    """
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if min(h, w) < 48:
        raise ValueError(f'img_size {(h, w)} is too small for the synthetic scenes; use at '
                         'least 48 x 48 pixels.')
    if not 1 <= num_scenes <= len(SCENE_COLORS):
        raise ValueError(f'num_scenes must be in 1..{len(SCENE_COLORS)}, got {num_scenes}.')
    rng = np.random.default_rng(seed)
    for split, prefix, count in (('training', 'ADE_train', num_train),
                                 ('validation', 'ADE_val', num_val)):
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(count):
            img, label = _render(rng, h, w, num_scenes, num_objects)
            name = f'{prefix}_{i + 1:08d}'
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), img[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(ann_dir, name + '.png'), label)
    return root
