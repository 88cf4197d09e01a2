"""Registered losses."""
from .ignore_aware_cross_entropy import IgnoreAwareCrossEntropyLoss

__all__ = ['IgnoreAwareCrossEntropyLoss']
