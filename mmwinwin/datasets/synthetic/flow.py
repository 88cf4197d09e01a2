"""Generated optical-flow pairs with exact ground truth, written in the MPI-Sintel layout.

Construction (so that ``frame1(x) = frame2(x + flow(x))`` holds by design):

1. a textured background canvas larger than the frame (multi-scale coloured noise plus
   random discs and bars, so every 16 px patch has structure), and an object texture;
2. frame 2 = the canvas with an elliptic object pasted at its frame-2 position, cropped;
3. the flow of frame 1: a smooth background motion (global affine: translation,
   rotation, zoom, plus a low-frequency random field) and, on the object's frame-1
   region, the object's own translation;
4. frame 1 is *sampled* from the frame-2 scene at ``x + flow(x)`` (bilinear): object
   pixels from the object layer, background pixels from the background canvas.

Background pixels whose match in frame 2 lies under the object, or outside the frame,
are written as occluded (``occlusions/``); ``invalid/`` masks are all zero.

Usage::

    python tools/dataset_converters/generate_synthetic.py sintel-flow data/synthflow \
        --num-train 16 --num-val 4 --size 96 128
"""
from __future__ import annotations

import os.path as osp

import cv2
import numpy as np

from ...fileio.flow import write_flo, write_mask_png

__all__ = ['make_texture', 'make_flow_pair', 'write_sintel_layout', 'generate_sintel_flow']


def make_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Float32 RGB texture in [0, 255] with structure at several scales."""
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((32, 90.0), (8, 60.0), (3, 35.0)):
        small = rng.uniform(-1, 1, (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img += 128.0
    for _ in range(max(4, h * w // 1500)):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                       int(rng.integers(2, 9)), color, -1)
        else:
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.rectangle(img, (x, y), (x + int(rng.integers(2, 14)), y + int(rng.integers(2, 5))),
                          color, -1)
    return np.clip(img, 0, 255)


def make_flow_pair(rng: np.random.Generator, size: tuple[int, int] = (96, 128),
                   max_flow: float = 8.0) -> dict[str, np.ndarray]:
    """One pair: ``img1``, ``img2`` (uint8 RGB), ``flow`` (float32 (H, W, 2)), ``occ`` (bool)."""
    H, W = size
    M = int(np.ceil(max_flow * 1.5)) + 4  # canvas margin: every sample point stays inside
    ch, cw = H + 2 * M, W + 2 * M
    bg = make_texture(rng, ch, cw)
    obj_tex = make_texture(rng, ch, cw)[..., ::-1].copy()

    # object: ellipse in frame-2 canvas coordinates, translation t_obj (frame 1 -> 2)
    t_obj = rng.uniform(-max_flow, max_flow, 2).astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7) * H + M, rng.uniform(0.3, 0.7) * W + M
    ay, ax = rng.uniform(0.12, 0.25) * H, rng.uniform(0.12, 0.25) * W
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    obj2 = (((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1).astype(np.float32)
    scene2 = bg * (1 - obj2[..., None]) + obj_tex * obj2[..., None]

    # background flow on the frame-1 grid: affine + smooth field, bounded by max_flow
    fy, fx = np.mgrid[0:H, 0:W].astype(np.float32)
    ang, zoom = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)
    yc, xc = fy - H / 2, fx - W / 2
    u = zoom * xc - ang * yc + rng.uniform(-0.5, 0.5) * max_flow
    v = zoom * yc + ang * xc + rng.uniform(-0.5, 0.5) * max_flow
    smooth = cv2.resize(rng.uniform(-1, 1, (4, 5, 2)).astype(np.float32), (W, H),
                        interpolation=cv2.INTER_CUBIC)
    u += 0.3 * max_flow * smooth[..., 0]
    v += 0.3 * max_flow * smooth[..., 1]
    bg_flow = np.clip(np.stack([u, v], -1), -max_flow, max_flow).astype(np.float32)

    # frame-1 object region: pixels whose object-motion target is on the object in frame 2
    ox, oy = fx + t_obj[0] + M, fy + t_obj[1] + M
    obj1 = cv2.remap(obj2, ox, oy, cv2.INTER_LINEAR) > 0.5
    flow = np.where(obj1[..., None], t_obj[None, None], bg_flow).astype(np.float32)

    mx, my = fx + flow[..., 0] + M, fy + flow[..., 1] + M
    from_obj = cv2.remap(obj_tex, mx, my, cv2.INTER_LINEAR)
    from_bg = cv2.remap(bg, mx, my, cv2.INTER_LINEAR)
    img1 = np.where(obj1[..., None], from_obj, from_bg)
    img2 = scene2[M:M + H, M:M + W]

    target_on_obj = cv2.remap(obj2, mx, my, cv2.INTER_LINEAR) > 0.5
    tx, ty = fx + flow[..., 0], fy + flow[..., 1]
    outside = (tx < 0) | (tx > W - 1) | (ty < 0) | (ty > H - 1)
    occ = (~obj1 & target_on_obj) | outside
    to_u8 = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)  # noqa: E731
    return dict(img1=to_u8(img1), img2=to_u8(img2), flow=flow, occ=occ)


def write_sintel_layout(root: str, num_scenes: int, size: tuple[int, int] = (96, 128),
                        max_flow: float = 8.0, seed: int = 0, split: str = 'training',
                        pass_name: str = 'clean') -> list[str]:
    """Write ``num_scenes`` one-pair scenes as ``{split}/{pass}/synth_NNN/frame_000{1,2}.png``,
    ``{split}/flow/synth_NNN/frame_0001.flo`` and the invalid / occlusion masks.
    Returns the scene names."""
    rng = np.random.default_rng(seed)
    names = []
    for i in range(num_scenes):
        name = f'synth_{seed:03d}_{i:04d}'
        pair = make_flow_pair(rng, size, max_flow)
        base = osp.join(root, split)
        for k, img in (('frame_0001.png', pair['img1']), ('frame_0002.png', pair['img2'])):
            path = osp.join(base, pass_name, name, k)
            write_mask_png(path, np.zeros((1, 1)))  # creates the folder
            cv2.imwrite(path, img[:, :, ::-1])
        write_flo(osp.join(base, 'flow', name, 'frame_0001.flo'), pair['flow'])
        write_mask_png(osp.join(base, 'occlusions', name, 'frame_0001.png'), pair['occ'])
        write_mask_png(osp.join(base, 'invalid', name, 'frame_0001.png'),
                       np.zeros(pair['occ'].shape, bool))
        names.append(name)
    return names


def generate_sintel_flow(root: str, num_train: int = 16, num_val: int = 4,
                         img_size: tuple[int, int] = (128, 192), seed: int = 0,
                         max_flow: float = 8.0) -> str:
    """Training pairs under ``root/train``, validation pairs under ``root/val`` (both in
    the Sintel ``training/`` layout, different seeds). Returns ``root``."""
    write_sintel_layout(osp.join(root, 'train'), num_train, tuple(img_size), max_flow, seed)
    write_sintel_layout(osp.join(root, 'val'), num_val, tuple(img_size), max_flow, seed + 1)
    return root
