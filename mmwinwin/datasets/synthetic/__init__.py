"""Generators of small datasets in the real on-disk layouts, for tests and demos."""
from .ade20k import generate_ade20k, synthetic_ade20k_classes

__all__ = ['generate_ade20k', 'synthetic_ade20k_classes']
