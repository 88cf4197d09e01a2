"""Training glue: optimizer constructors, hooks."""
from .optimizers import ViTLayerDecayOptimizerConstructor

__all__ = ['ViTLayerDecayOptimizerConstructor']
