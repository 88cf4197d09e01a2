from .atomic_checkpoint_hook import (AtomicCheckpointHook, AtomicLocalBackend, CheckpointWriteError,
                                     atomic_write)
from .full_image_phase_hook import FullImagePhaseHook
from .label_range_hook import LabelRangeHook
from .param_sync_check_hook import (ParamSyncCheckHook, parameter_checksums,
                                    tensor_fingerprints)
from .preemption_hook import PreemptionHook
from .rng_state_hook import RNGStateHook, capture_rng_state, model_generators, restore_rng_state
from .safe_checkpoint_loading_hook import SafeCheckpointLoadingHook

__all__ = ['ParamSyncCheckHook', 'parameter_checksums', 'tensor_fingerprints', 'RNGStateHook',
           'capture_rng_state', 'restore_rng_state', 'model_generators', 'LabelRangeHook',
           'FullImagePhaseHook', 'SafeCheckpointLoadingHook', 'AtomicCheckpointHook',
           'AtomicLocalBackend', 'CheckpointWriteError', 'atomic_write', 'PreemptionHook']
