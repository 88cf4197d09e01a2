"""Reading / writing COCO panoptic PNGs (RGB colour = segment id)."""
from __future__ import annotations

import numpy as np

from ..evaluation.functional.panoptic_quality import id_to_rgb, rgb_to_id


def write_panoptic_png(ids: np.ndarray, path: str) -> None:
    """Write (H, W) segment ids as a COCO panoptic PNG (lossless, RGB)."""
    import mmcv
    mmcv.imwrite(id_to_rgb(ids)[..., ::-1], path)  # mmcv writes BGR


def read_panoptic_png(path: str) -> np.ndarray:
    """Read a COCO panoptic PNG back into (H, W) segment ids."""
    import mmcv
    return rgb_to_id(mmcv.imread(path, flag='color', channel_order='rgb'))
