"""Safe checkpoint loading for everything mmwinwin and its tools load.

**Nothing global at import.** ``import mmwinwin`` leaves mmengine's ``CheckpointLoader``
schemes, ``mmengine.runner.checkpoint.load_from_local`` / ``load_from_http`` and torch's safe
globals as they were. Safe loading is switched on where it is needed:

* :func:`load_checkpoint` -- what mmwinwin's own code calls (its tools, converters, hooks and
  the ``Pretrained`` init of its backbones): any mmengine checkpoint path or URL, loaded under
  :func:`safe_checkpoint_loading`;
* :func:`safe_checkpoint_loading` -- a context manager that, while it is open, routes
  mmengine's local-file and ``http(s)://`` loads (and the ``torchvision://``,
  ``open-mmlab://``, ``mmcls://`` schemes, which call ``load_from_local`` / ``load_from_http``
  by name) through :func:`load_checkpoint_path`, and puts back exactly what was there before
  on exit (it nests);
* ``custom_hooks = [dict(type='SafeCheckpointLoadingHook')]`` -- the same for a whole run, from
  the config (every config of this project declares it, in ``configs/_base_/mmwinwin_runtime.py``),
  so the Runner's ``load_from`` / ``resume`` and every ``init_cfg=dict(type='Pretrained')``
  load safely under mmseg's and mmdet's own tools too.

Safe means: ``torch.load(weights_only=True)`` passed explicitly (so
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot switch the safe unpickler off), with only the
types below allowed, for this load only (``torch.serialization.safe_globals`` as a context,
never ``add_safe_globals``); an empty, truncated or unsafe file stops with an error naming the
file (:class:`~mmwinwin.layers.vit.checkpoint.CorruptCheckpointError`,
:class:`~mmwinwin.layers.vit.checkpoint.UnsafeCheckpointError`).

The allow-list (:func:`runner_safe_globals`):

A Runner checkpoint holds, besides tensors, the message hub's ``HistoryBuffer``
objects and numpy arrays / scalars. A ``HistoryBuffer`` pickles its statistics
methods as ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would
make the safe loader unsafe (any attribute chain becomes reachable), so a
*restricted* ``getattr`` is registered under that name: it resolves only
``HistoryBuffer``'s own statistics methods. With these few classes allowed,
``--resume``, ``load_from`` and ``tools/test.py CONFIG CKPT`` work while arbitrary
pickled code is still refused. CroCo checkpoints add ``argparse.Namespace``
(:data:`~mmwinwin.layers.flow.croco_checkpoint.CROCO_SAFE_GLOBALS`).

**Resuming past a broken checkpoint.** :func:`find_resumable_checkpoint` (used by
``tools/train.py --resume``) starts from the checkpoint named in ``work_dir/last_checkpoint``
and falls back to the newest ``iter_N.pth`` / ``epoch_N.pth`` beside it that loads, logging
which one it takes and why the newer ones were skipped.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import re
from typing import Any

import numpy as np
import torch

from ..layers.flow.croco_checkpoint import CROCO_SAFE_GLOBALS
from ..layers.vit.checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                                     load_checkpoint_file)

__all__ = ['mmengine_safe_globals', 'restricted_getattr', 'runner_safe_globals',
           'load_checkpoint', 'load_checkpoint_path', 'safe_checkpoint_loading',
           'find_resumable_checkpoint', 'checkpoint_errors_exit', 'CorruptCheckpointError',
           'UnsafeCheckpointError']


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


def runner_safe_globals() -> list:
    """Everything a checkpoint loaded by mmwinwin's tools may contain besides tensors and
    plain containers: mmengine Runner state and CroCo's pre-training ``args``."""
    return [*mmengine_safe_globals(), *CROCO_SAFE_GLOBALS]


def load_checkpoint_path(filename: str, map_location: Any = 'cpu', mmap: bool = False) -> Any:
    """Load a local checkpoint file with ``weights_only=True`` and the
    :func:`runner_safe_globals` allow-list; clear errors for missing, empty, corrupt and
    unsafe files."""
    return load_checkpoint_file(osp.expanduser(filename), map_location=map_location,
                                safe_globals=runner_safe_globals(), mmap=mmap)


def load_checkpoint(filename: str, map_location: Any = 'cpu') -> Any:
    """Load any checkpoint mmengine can name (a local path, ``http(s)://``,
    ``torchvision://``, ``open-mmlab://`` ...) the safe way: mmengine's
    ``CheckpointLoader`` under :func:`safe_checkpoint_loading`. What mmwinwin's own code
    calls to load a checkpoint."""
    from mmengine.runner.checkpoint import CheckpointLoader
    with safe_checkpoint_loading():
        return CheckpointLoader.load_checkpoint(filename, map_location=map_location)


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_path(filename, map_location=map_location)


def _load_from_http(filename: str, map_location: Any = None, model_dir: str | None = None,
                    progress: bool = False) -> Any:
    """mmengine's ``load_from_http`` (rank 0 downloads first), but the cached file is
    loaded with :func:`load_checkpoint`."""
    from mmengine.dist import get_dist_info
    from torch.hub import download_url_to_file, get_dir
    from urllib.parse import urlparse

    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    for turn in ((0,) if world_size == 1 else (0, 1)):
        if (rank == 0) == (turn == 0) and not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            download_url_to_file(filename, cached, progress=progress)
        if world_size > 1 and turn == 0:
            torch.distributed.barrier()
    return load_checkpoint_path(cached, map_location=map_location)


@contextlib.contextmanager
def checkpoint_errors_exit():
    """In a tool: an empty, corrupt or unsafe checkpoint ends the run with its message
    (which names the file) instead of a traceback through mmengine and torch."""
    try:
        yield
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise SystemExit(str(err)) from None


_LOCAL, _HTTP = '', ('http://', 'https://')


@contextlib.contextmanager
def safe_checkpoint_loading():
    """While open, mmengine's checkpoint loads of local files and ``http(s)://`` URLs (the
    Runner's ``load_from`` / ``resume``, ``init_cfg=dict(type='Pretrained')``,
    ``_load_checkpoint``) go through :func:`load_checkpoint_path`; ``torchvision://``,
    ``open-mmlab://`` and ``mmcls://`` too, since they call ``load_from_local`` /
    ``load_from_http`` by name (``pavi://`` and ``s3://`` are not routed). On exit exactly
    the loaders that were registered before are put back, so contexts nest and nothing
    outlives them."""
    from mmengine.runner import checkpoint as mm_checkpoint
    loader = mm_checkpoint.CheckpointLoader
    # mmengine keeps its scheme table in ``_schemes`` (no public getter)
    saved_schemes = {p: loader._schemes.get(p) for p in (_LOCAL, *_HTTP)}
    saved_functions = (mm_checkpoint.load_from_local, mm_checkpoint.load_from_http)
    loader.register_scheme(prefixes=_LOCAL, loader=_load_from_local, force=True)
    loader.register_scheme(prefixes=_HTTP, loader=_load_from_http, force=True)
    mm_checkpoint.load_from_local = _load_from_local
    mm_checkpoint.load_from_http = _load_from_http
    try:
        yield
    finally:
        mm_checkpoint.load_from_local, mm_checkpoint.load_from_http = saved_functions
        for prefix, previous in saved_schemes.items():
            if previous is None:
                loader._schemes.pop(prefix, None)
            else:
                loader.register_scheme(prefixes=prefix, loader=previous, force=True)


_NUMBERED = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def find_resumable_checkpoint(work_dir: str, logger: Any = 'current') -> str | None:
    """The newest checkpoint in ``work_dir`` that loads, for ``--resume`` without a path.

    Candidates: the file named in ``work_dir/last_checkpoint`` (mmengine's own pointer),
    then the ``iter_N.pth`` / ``epoch_N.pth`` files in its folder (and in ``work_dir``),
    newest (largest N) first. Each is opened with :func:`load_checkpoint` (memory-mapped,
    so tensors are not read). Skipped files are logged with the reason. Returns ``None``
    when ``work_dir`` holds no checkpoint at all (training starts afresh, as mmengine
    does); raises :class:`CorruptCheckpointError` listing every reason when none loads.
    """
    from mmengine.logging import print_log

    candidates: list[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last:
            candidates.append(last)
    folders = {work_dir} | {osp.dirname(c) for c in candidates if osp.dirname(c)}
    numbered = []
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            m = _NUMBERED.match(name)
            if m:
                numbered.append((int(m.group(2)), m.group(1), osp.join(folder, name)))
    candidates += [p for _, _, p in sorted(numbered, reverse=True)]
    seen, ordered = set(), []
    for c in candidates:
        key = osp.realpath(c)
        if key not in seen:
            seen.add(key)
            ordered.append(c)
    if not ordered:
        return None
    skipped = []
    for path in ordered:
        if not osp.isfile(path):
            skipped.append(f'{path}: does not exist')
            continue
        try:
            load_checkpoint_path(path, mmap=True)
        except (CorruptCheckpointError, UnsafeCheckpointError, RuntimeError) as err:
            skipped.append(f'{path}: {err}')
            continue
        if skipped:
            print_log('--resume: skipped newer checkpoints that do not load:\n  '
                      + '\n  '.join(skipped) + f'\nResuming from {path}, the newest that '
                      'loads.', logger=logger, level=30)
        return path
    raise CorruptCheckpointError(
        f'--resume: no checkpoint in {work_dir} loads:\n  ' + '\n  '.join(skipped)
        + '\nStart training afresh (drop --resume) or restore an intact checkpoint.')
