"""Training glue: optimizer constructors, hooks."""
from .hooks import ParamSyncCheckHook
from .optimizers import ViTLayerDecayOptimizerConstructor

__all__ = ['ParamSyncCheckHook', 'ViTLayerDecayOptimizerConstructor']
