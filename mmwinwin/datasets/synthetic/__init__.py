"""Generators of small datasets in the real on-disk formats."""
from .coco import COCO_SYNTH_CATEGORIES, COCO_SYNTH_METAINFO, generate_coco

__all__ = ['generate_coco', 'COCO_SYNTH_CATEGORIES', 'COCO_SYNTH_METAINFO']
