"""Shared helpers of the tools.

``benchmark`` (timers, peak memory, MAC counting) is pure PyTorch, so
``import mmwinwin.utils.benchmark`` works with torch alone (the GPU benchmark machine
has no mmcv / mmseg / mmdet). The OpenMMLab helpers (``checkpoint``: safe loading of
mmengine checkpoints; ``settings``: config settings checks; ``runner``: config flags,
distributed set-up, strict checkpoint loading) import mmengine, so their names are loaded
on first use.
"""
import importlib

_LAZY = {
    **{name: 'checkpoint' for name in (
        'CorruptCheckpointError', 'UnsafeCheckpointError', 'checkpoint_errors_exit',
        'find_resumable_checkpoint', 'load_checkpoint', 'load_checkpoint_path',
        'safe_checkpoint_loading')},
    'check_config_settings': 'settings', 'exit_on_unknown_settings': 'settings',
    **{name: 'runner' for name in (
        'CheckpointMismatchError', 'apply_common_flags', 'check_cfg_options',
        'distributed_session', 'parse_tool_args', 'tool_parser', 'load_checkpoint_strict',
        'setup_cpu_distributed', 'teardown_distributed')},
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f'.{_LAZY[name]}', __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(__all__))
