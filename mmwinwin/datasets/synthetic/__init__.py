"""Generators of small datasets in the real on-disk layouts, for tests and demos."""
from .ade20k import generate_ade20k, synthetic_ade20k_classes
from .coco import COCO_SYNTH_CATEGORIES, COCO_SYNTH_METAINFO, generate_coco
from .coco_cue import CUE_TASKS, cue_metainfo
from .nyu import generate_nyu

__all__ = ['generate_ade20k', 'synthetic_ade20k_classes', 'generate_nyu', 'generate_coco',
           'COCO_SYNTH_CATEGORIES', 'COCO_SYNTH_METAINFO', 'CUE_TASKS', 'cue_metainfo']
