from .checkpoint import allow_mmengine_checkpoints
from .runner import (CheckpointMismatchError, add_rng_state_hook, apply_common_flags,
                     check_cfg_options,
                     distributed_session, parse_tool_args, tool_parser,
                     load_checkpoint_strict, setup_cpu_distributed,
                     teardown_distributed)

__all__ = ['allow_mmengine_checkpoints', 'add_rng_state_hook', 'CheckpointMismatchError',
           'apply_common_flags',
           'check_cfg_options', 'load_checkpoint_strict', 'setup_cpu_distributed',
           'teardown_distributed', 'distributed_session', 'tool_parser',
           'parse_tool_args']
