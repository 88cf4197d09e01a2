"""Training glue: optimizer constructors, hooks, the CPU distributed model wrapper."""
from .hooks import FullImagePhaseHook, LabelRangeHook, ParamSyncCheckHook, RNGStateHook
from .optimizers import ViTLayerDecayOptimizerConstructor
from .wrappers import CPUDistributedDataParallel

__all__ = ['FullImagePhaseHook', 'LabelRangeHook', 'ParamSyncCheckHook', 'RNGStateHook',
           'ViTLayerDecayOptimizerConstructor', 'CPUDistributedDataParallel']
