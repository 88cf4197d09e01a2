"""Datasets, transforms and synthetic data generators (OpenMMLab glue)."""
from . import synthetic  # noqa: F401
from . import flow_datasets, flow_transforms  # noqa: F401  (optical flow)
from .synthetic_ade20k import SyntheticADE20KDataset
from .transforms import *  # noqa: F401,F403
from .transforms import WINWIN_META_KEYS, WinWinLoadPanopticAnnotations, WinWinWindows

__all__ = ['SyntheticADE20KDataset', 'WinWinWindows', 'WINWIN_META_KEYS',
           'WinWinLoadPanopticAnnotations']
