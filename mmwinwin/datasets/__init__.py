"""Datasets, transforms and synthetic data generators (OpenMMLab glue)."""
from . import synthetic  # noqa: F401
from . import flow_datasets, flow_transforms  # noqa: F401  (optical flow)
from .synthetic_ade20k import SyntheticADE20KDataset

__all__ = ['SyntheticADE20KDataset']
