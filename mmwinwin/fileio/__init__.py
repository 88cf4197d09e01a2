"""File formats shared by datasets and evaluation (NumPy, no OpenMMLab imports at module
level): optical-flow files (``flow``: .flo, .flo5, KITTI PNG, masks) and COCO panoptic
PNGs (``panoptic``: colour <-> segment id)."""
from .flow import read_flow, write_flow
from .panoptic import id_to_rgb, read_panoptic_png, rgb_to_id, write_panoptic_png

__all__ = ['read_flow', 'write_flow', 'rgb_to_id', 'id_to_rgb', 'read_panoptic_png',
           'write_panoptic_png']
