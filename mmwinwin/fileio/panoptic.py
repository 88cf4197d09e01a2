"""COCO panoptic PNGs: RGB colour <-> segment id, and reading / writing the files.

Shared by the datasets (loading, generators) and the evaluation (PQ), so neither
imports the other."""
from __future__ import annotations

import numpy as np


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG colour (H, W, 3, RGB order) -> segment id R + 256 G + 256^2 B."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f'Expected an (H, W, 3) RGB panoptic image, got shape {rgb.shape}.')
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (H, W) -> COCO panoptic colour (H, W, 3) uint8, RGB order."""
    ids = np.asarray(ids, dtype=np.int64)
    if (ids < 0).any() or (ids >= 256 ** 3).any():
        raise ValueError('Panoptic segment ids must lie in [0, 256^3).')
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def write_panoptic_png(ids: np.ndarray, path: str) -> None:
    """Write (H, W) segment ids as a COCO panoptic PNG (lossless, RGB)."""
    import mmcv
    mmcv.imwrite(id_to_rgb(ids)[..., ::-1], path)  # mmcv writes BGR


def read_panoptic_png(path: str) -> np.ndarray:
    """Read a COCO panoptic PNG back into (H, W) segment ids."""
    import mmcv
    return rgb_to_id(mmcv.imread(path, flag='color', channel_order='rgb'))
