"""Datasets, transforms and synthetic data generators (OpenMMLab glue):
``winwin`` (the window transform and packers), ``flow`` (flow datasets and transforms),
``panoptic`` (panoptic annotation loading), ``synthetic`` (generators in the real layouts), ``checked_loading`` (image / annotation
loaders whose decoding errors name the file)."""
from . import synthetic  # noqa: F401
from .checked_loading import CheckedLoadAnnotations, CheckedLoadImageFromFile
from .flow import *  # noqa: F401,F403
from .panoptic import LoadPanopticAnnotations
from .synthetic.ade20k_dataset import SyntheticADE20KDataset
from .winwin import WINWIN_META_KEYS, WinWinPackDetInputs, WinWinPackSegInputs, WinWinWindows

__all__ = ['SyntheticADE20KDataset', 'WinWinWindows', 'WINWIN_META_KEYS',
           'WinWinPackSegInputs', 'WinWinPackDetInputs', 'LoadPanopticAnnotations',
           'CheckedLoadImageFromFile', 'CheckedLoadAnnotations']
