"""Datasets, transforms and synthetic data generators (OpenMMLab glue)."""
from . import synthetic  # noqa: F401
from .synthetic_ade20k import SyntheticADE20KDataset

__all__ = ['SyntheticADE20KDataset']
