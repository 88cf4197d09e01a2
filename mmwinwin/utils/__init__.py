from .checkpoint import (CorruptCheckpointError, UnsafeCheckpointError, allow_mmengine_checkpoints,
                         checkpoint_errors_exit, find_resumable_checkpoint,
                         install_safe_checkpoint_loader, load_checkpoint)
from .settings import check_config_settings
from .runner import (CheckpointMismatchError, add_rng_state_hook, apply_common_flags, check_cfg_options,
                     distributed_session, parse_tool_args, tool_parser,
                     load_checkpoint_strict, setup_cpu_distributed,
                     teardown_distributed)

__all__ = ['allow_mmengine_checkpoints', 'CorruptCheckpointError', 'UnsafeCheckpointError',
           'find_resumable_checkpoint', 'checkpoint_errors_exit', 'install_safe_checkpoint_loader',
           'load_checkpoint', 'check_config_settings', 'CheckpointMismatchError', 'add_rng_state_hook',
           'apply_common_flags', 'check_cfg_options', 'load_checkpoint_strict', 'setup_cpu_distributed',
           'teardown_distributed', 'distributed_session', 'tool_parser',
           'parse_tool_args']
