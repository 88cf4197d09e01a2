"""Let torch >= 2.6 (``weights_only=True`` by default) load mmengine Runner checkpoints.

A Runner checkpoint holds, besides tensors, the message hub's ``HistoryBuffer``
objects and numpy arrays / scalars. Rather than switching the safe loader off, the
few classes mmengine writes are added to torch's allow-list of safe globals, so
``--resume``, ``load_from`` and ``tools/test.py CONFIG CKPT`` work while arbitrary
pickled code is still refused.
"""
from __future__ import annotations

import numpy as np
import torch


def _numpy_globals() -> list:
    from numpy._core import multiarray
    allowed = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes by their class (numpy.dtypes.Float64DType, ...)
    allowed += [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                             np.uint8, np.uint16, np.uint32, np.uint64,
                                             np.float16, np.float32, np.float64, np.str_)]
    return allowed


def mmengine_safe_globals() -> list:
    """The non-tensor classes an mmengine Runner checkpoint contains."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer] + _numpy_globals()


def allow_mmengine_checkpoints() -> None:
    """Add mmengine's checkpoint classes to torch's safe globals (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 loads everything anyway
        add(mmengine_safe_globals())
