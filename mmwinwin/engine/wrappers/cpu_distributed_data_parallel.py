"""``CPUDistributedDataParallel``: mmengine's DDP wrapper for CPU (gloo) runs, with every
``SyncBatchNorm`` (mmcv's ``SyncBN``, which the full-size configs use) replaced by
:class:`~mmwinwin.layers.norm.CPUSyncBatchNorm` before wrapping, since DDP refuses
``nn.SyncBatchNorm`` in a CPU module ("SyncBatchNorm layers only work with GPU modules").

:func:`mmwinwin.utils.setup_cpu_distributed` selects it (as
``model_wrapper_cfg.type='mmwinwin.CPUDistributedDataParallel'``) for distributed runs
without a GPU; on a GPU mmengine's own wrapper and ``nn.SyncBatchNorm`` are used.
"""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel

from ...layers.norm import convert_sync_batchnorm_for_cpu
from ...registry import MODEL_WRAPPERS

__all__ = ['CPUDistributedDataParallel']


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` over a CPU module whose ``SyncBatchNorm`` layers are
    converted to :class:`~mmwinwin.layers.norm.CPUSyncBatchNorm` (same parameter and
    buffer names)."""

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs) -> None:
        super().__init__(module=convert_sync_batchnorm_for_cpu(module),
                         detect_anomalous_params=detect_anomalous_params, **kwargs)
