"""Training glue: optimizer constructors, schedules, hooks, the CPU distributed model wrapper."""
from .hooks import (AtomicCheckpointHook, FullImagePhaseHook, LabelRangeHook, ParamSyncCheckHook,
                    PreemptionHook, RNGStateHook, SafeCheckpointLoadingHook)
from .optimizers import ViTLayerDecayOptimizerConstructor
from .schedules import phase_restart_schedule
from .wrappers import CPUDistributedDataParallel

__all__ = ['FullImagePhaseHook', 'LabelRangeHook', 'ParamSyncCheckHook', 'RNGStateHook',
           'SafeCheckpointLoadingHook', 'AtomicCheckpointHook', 'PreemptionHook',
           'ViTLayerDecayOptimizerConstructor', 'CPUDistributedDataParallel',
           'phase_restart_schedule']
