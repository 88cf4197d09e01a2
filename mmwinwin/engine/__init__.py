"""Training glue: optimizer constructors, hooks, the CPU distributed model wrapper."""
from .hooks import ParamSyncCheckHook, RNGStateHook
from .optimizers import ViTLayerDecayOptimizerConstructor
from .wrappers import CPUDistributedDataParallel

__all__ = ['ParamSyncCheckHook', 'RNGStateHook', 'ViTLayerDecayOptimizerConstructor',
           'CPUDistributedDataParallel']
