from .checkpoint import allow_mmengine_checkpoints
from .runner import (CheckpointMismatchError, apply_common_flags, check_cfg_options,
                     load_checkpoint_strict, setup_cpu_distributed,
                     teardown_distributed)

__all__ = ['allow_mmengine_checkpoints', 'CheckpointMismatchError', 'apply_common_flags',
           'check_cfg_options', 'load_checkpoint_strict', 'setup_cpu_distributed',
           'teardown_distributed']
