"""Normalisation layers the OpenMMLab hosts lack: a synchronised batch norm that also
runs on CPU (gloo) (``cpu_sync_batch_norm``)."""
from .cpu_sync_batch_norm import CPUSyncBatchNorm, convert_sync_batchnorm_for_cpu

__all__ = ['CPUSyncBatchNorm', 'convert_sync_batchnorm_for_cpu']
