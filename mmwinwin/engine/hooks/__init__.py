from .param_sync_check_hook import ParamSyncCheckHook, parameter_checksums

__all__ = ['ParamSyncCheckHook', 'parameter_checksums']
