"""Let torch >= 2.6 (``weights_only=True`` by default) load mmengine Runner checkpoints.

A Runner checkpoint holds, besides tensors, the message hub's ``HistoryBuffer``
objects and numpy arrays / scalars. A ``HistoryBuffer`` pickles its statistics
methods as ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would
make the safe loader unsafe (any attribute chain becomes reachable), so a
*restricted* ``getattr`` is registered under that name: it resolves only
``HistoryBuffer``'s own statistics methods. With these few classes allowed,
``--resume``, ``load_from`` and ``tools/test.py CONFIG CKPT`` work while arbitrary
pickled code is still refused.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ['allow_mmengine_checkpoints', 'mmengine_safe_globals', 'restricted_getattr']


def restricted_getattr(obj, name: str):
    """``getattr`` limited to ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    # the four built-in statistics plus any registered with HistoryBuffer.register_statistics
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'Refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only '
        'HistoryBuffer statistics methods are allowed.')


def mmengine_safe_globals() -> list:
    """The non-tensor globals an mmengine Runner checkpoint contains."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy._core import multiarray
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    return [HistoryBuffer, multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
            *dtype_classes, (restricted_getattr, 'builtins.getattr')]


def allow_mmengine_checkpoints() -> None:
    """Add mmengine's checkpoint globals to torch's safe globals (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_safe_globals())
