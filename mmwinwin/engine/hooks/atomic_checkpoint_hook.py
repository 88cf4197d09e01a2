"""``AtomicCheckpointHook``: checkpoints and ``last_checkpoint`` are written atomically.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place (a kill or a full disk part-way
leaves a truncated file under the final name), writes ``work_dir/last_checkpoint`` with a plain
``open(..., 'w')``, and, with ``max_keep_ckpts``, deletes the oldest checkpoint *before* it
saves the new one (``max_keep_ckpts=1`` and a failing save leave no checkpoint at all).

This hook, declared by every config (``configs/_base_/mmwinwin_hooks.py``, so it also works
under mmseg's and mmdet's own tools), changes each local-disk ``CheckpointHook`` of the run in
``before_run``:

* its ``backend_args`` select :class:`AtomicLocalBackend` (registered as the mmengine file
  backend ``'mmwinwin_atomic_local'``): every file is written to a hidden temporary file in the
  same folder (``.iter_N.pth.partial``), flushed and ``fsync``-ed, then renamed over the
  final name with ``os.replace`` (atomic on POSIX), and the folder is ``fsync``-ed; a reader
  sees the old file or the complete new one, never a part;
* its save step writes the checkpoint first, then ``last_checkpoint`` (atomically, through the
  same backend), and only then deletes the checkpoints ``max_keep_ckpts`` drops.

A write that fails (disk full, quota, file-size limit) removes its temporary file and raises
:class:`CheckpointWriteError` naming the file, the error and the free space of its file system
(``shutil.disk_usage``); the previous checkpoint and ``last_checkpoint`` are untouched, so
``tools/train.py --resume`` starts from the last good checkpoint.

A ``CheckpointHook`` whose ``out_dir`` is not a local path, or whose config sets its own
``backend_args`` / ``file_client_args``, is left alone.

Test-only: ``MMWINWIN_TEST_PAUSE_IN_SAVE=NAME:MARKER[:SECONDS]`` makes the write of the file
named ``NAME`` (e.g. ``iter_4.pth``) stop half-way, after writing ``MARKER`` (holding the
process id), until ``MARKER.go`` exists or ``SECONDS`` (default 120) pass -- so a test can kill
the process while a checkpoint is being written. It fires once (not when ``MARKER`` exists).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
import time
import types
from collections import deque
from pathlib import Path
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook

from ...registry import register

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'CheckpointWriteError', 'atomic_write',
           'ATOMIC_BACKEND']

ATOMIC_BACKEND = 'mmwinwin_atomic_local'
PAUSE_ENV = 'MMWINWIN_TEST_PAUSE_IN_SAVE'
_CHUNK = 1 << 20


class CheckpointWriteError(OSError):
    """A checkpoint (or ``last_checkpoint``) could not be written; nothing was replaced."""


def _size(n: float) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1024
    return f'{n} B'


def _pause_if_asked(path: str) -> None:
    """The test-only pause half-way through writing ``path`` (see the module docstring)."""
    setting = os.environ.get(PAUSE_ENV)
    if not setting:
        return
    name, marker, *rest = setting.split(':')
    if osp.basename(path) != name or osp.exists(marker):
        return
    seconds = float(rest[0]) if rest else 120.0
    with open(marker + '.tmp', 'w') as f:
        f.write(str(os.getpid()))
    os.replace(marker + '.tmp', marker)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not osp.exists(marker + '.go'):
        time.sleep(0.02)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a hidden ``.NAME.partial`` beside it, flushed
    and fsync-ed, then ``os.replace``; on failure the temporary file is removed and
    :class:`CheckpointWriteError` names ``path`` and the free space left."""
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.partial')
    view = memoryview(data)
    try:
        with open(tmp, 'wb') as f:
            half = len(view) // 2
            for start in range(0, len(view), _CHUNK):
                if start <= half < start + _CHUNK:
                    f.write(view[start:half])
                    f.flush()
                    _pause_if_asked(path)
                    f.write(view[half:start + _CHUNK])
                else:
                    f.write(view[start:start + _CHUNK])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        try:
            usage = shutil.disk_usage(folder)
            space = (f'{_size(usage.free)} free of {_size(usage.total)} on the file system of '
                     f'{folder}')
        except OSError:
            space = f'free space of {folder} unknown'
        raise CheckpointWriteError(
            err.errno,
            f'Could not write {path} ({_size(len(data))}): {err.strerror or err}; {space}. '
            'Nothing was replaced: the previous checkpoint and last_checkpoint are intact. '
            'Free some space, then continue with tools/train.py CONFIG --resume.') from err
    _fsync_folder(folder)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local-disk backend whose ``put`` / ``put_text`` are :func:`atomic_write`."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def _save_then_prune(self: CheckpointHook, runner, step: int, meta: dict) -> None:
    """``CheckpointHook._save_checkpoint_with_step`` in the safe order: save the checkpoint,
    then point ``last_checkpoint`` at it, then delete what ``max_keep_ckpts`` drops. The
    ``keep_ckpt_ids`` list stored in the checkpoint's message hub is the same as mmengine's."""
    dropped = []
    ids = list(getattr(self, 'keep_ckpt_ids', ()))  # only kept with max_keep_ckpts > 0
    if self.max_keep_ckpts > 0 and not (ids and ids[-1] == step):
        ids.append(step)
        dropped, ids = ids[:-self.max_keep_ckpts], ids[-self.max_keep_ckpts:]
        self.keep_ckpt_ids = deque(ids, maxlen=self.max_keep_ckpts)
        runner.message_hub.update_info('keep_ckpt_ids', ids)
    name = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, name)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(self.out_dir, name, self.file_client_args,
                           save_optimizer=self.save_optimizer,
                           save_param_scheduler=self.save_param_scheduler, meta=meta,
                           by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
    if not is_main_process():
        return
    atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt.encode())
    for old in dropped:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed checkpoints are folders
            self.file_backend.rmtree(path)


def _is_local(out_dir) -> bool:
    return out_dir is None or '://' not in str(out_dir)


@register('HOOKS')
class AtomicCheckpointHook(Hook):
    """Make the run's local ``CheckpointHook`` write atomically, and save before it prunes."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._changed: list[CheckpointHook] = []

    def before_run(self, runner) -> None:
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or not _is_local(hook.out_dir):
                continue
            if hook.backend_args is not None or hook.file_client_args is not None:
                continue  # the config chose its own storage
            hook.backend_args = dict(backend=ATOMIC_BACKEND)
            hook._save_checkpoint_with_step = types.MethodType(_save_then_prune, hook)
            self._changed.append(hook)

    def after_run(self, runner) -> None:
        for hook in self._changed:
            hook.__dict__.pop('_save_checkpoint_with_step', None)
            hook.backend_args = None
        self._changed = []
