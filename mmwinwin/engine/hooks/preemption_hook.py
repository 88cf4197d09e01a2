"""``PreemptionHook``: on SIGTERM, finish the iteration, save a checkpoint, end the run cleanly.

A preempted job (a cluster scheduler, ``kill``, torch.distributed.run stopping its workers)
gets SIGTERM and, without this hook, dies at once: everything since the last scheduled
checkpoint is lost. With it (every config declares it, ``configs/_base_/mmwinwin_hooks.py``):

* the training iteration in progress finishes; then, on every rank at the same iteration
  (ranks agree through one tiny all-reduce per iteration in a distributed run), a checkpoint
  is written by the run's ``CheckpointHook`` (atomically, see ``AtomicCheckpointHook``, with
  ``last_checkpoint`` pointing at it and ``max_keep_ckpts`` applied) unless one was just
  saved at this iteration, with every rank's RNG state (``RNGStateHook``), so ``--resume``
  continues bit-identically;
* the train loop stops (``stop_training``), the run ends through the usual ``after_train`` /
  ``after_run`` hooks, and the process exits 0. Time from the signal to exit: the rest of
  the iteration plus one checkpoint save (docs/long_runs.md has measurements);
* a second SIGTERM ends the process at once (the signal's previous handling).

Where the handler lives. mmengine builds the train loop, and so forks the dataloader workers,
before ``before_run``; and torch's workers install a C handler that ends a worker on a
SIGTERM from anyone but its parent -- as ``torch.distributed.run`` (``os.killpg``) and
``scancel`` send it to the whole process group -- after which the main process fails with
"DataLoader worker ... is killed by signal: Terminated". So, when the hook is built (with the
Runner, in the main thread, before any worker):

* the handler is installed; in a forked child it does nothing; before ``before_run`` and
  after ``after_run`` it passes the signal on to the handler that was there before (by
  default: end the process), so nothing changes outside the run; during the run it requests
  the stop described above;
* torch's worker signal set-up (``torch.utils.data._utils.signal_handling.
  _set_worker_signal_handlers``, which each forked worker calls) is wrapped so that the
  workers ignore these signals (a worker still ends with its parent, torch's watchdog).
  Workers started with ``spawn`` are not covered (the hosts' configs use ``fork``).

``after_run`` puts the previous handler back. Iteration-based loops resume exactly; an
epoch-based loop's checkpoint is named ``iter_N.pth`` and its resumed run repeats the
interrupted epoch from its start.
"""
from __future__ import annotations

import os
import os.path as osp
import signal
import threading
import time

from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from ...registry import register

__all__ = ['PreemptionHook', 'shutdown_train_workers']


@register('HOOKS')
class PreemptionHook(Hook):
    """Turn SIGTERM (or ``signals``) into: finish the iteration, checkpoint, exit 0.

    Args:
        signals: names of the signals that request the stop (default ``('SIGTERM',)``;
            add e.g. ``'SIGUSR1'`` for Slurm's ``--signal=USR1@120``).
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has done its scheduled save

    def __init__(self, signals=('SIGTERM',)) -> None:
        self.signals = [getattr(signal, s) if isinstance(s, str) else signal.Signals(s)
                        for s in signals]
        self._pid = os.getpid()
        self._armed = False
        self._requested_at: float | None = None
        self._saved_iter: int | None = None
        self._previous: dict = {}
        self._worker_setup = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        # torch's dataloader workers install a C handler that ends the worker on a SIGTERM
        # from anyone but its parent (torch.distributed.run's os.killpg, scancel): workers
        # forked while the hook is armed ignore these signals instead
        from torch.utils.data._utils import signal_handling
        original = signal_handling._set_worker_signal_handlers
        self._worker_setup = (signal_handling, original)
        signal_handling._set_worker_signal_handlers = _IgnoringInWorkers(original, self.signals)

    # ----------------------------------------------------------------- the handler
    def _pass_on(self, signum, frame) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL (or None): the default action
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            return  # a forked dataloader worker: the main process decides
        if not self._armed or self._requested_at is not None:
            self._pass_on(signum, frame)  # outside the run, or a second signal: as before
            return
        self._requested_at = time.monotonic()
        self._signal_name = signal.Signals(signum).name

    # ------------------------------------------------------------------- the run
    def before_run(self, runner) -> None:
        self._armed = bool(self._previous)
        self._requested_at = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._saved_iter = runner.iter

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        stop = self._requested_at is not None
        if get_world_size() > 1:  # every rank stops at the same iteration
            import torch
            flag = torch.tensor([int(stop)], dtype=torch.int32)
            all_reduce(flag, op='max')
            stop = bool(flag.item())
        if not stop:
            return
        step = runner.iter + 1
        path = self._save(runner)
        runner.train_loop.stop_training = True
        waited = (f' {time.monotonic() - self._requested_at:.1f} s after the signal'
                  if self._requested_at is not None else ' (another rank was signalled)')
        print_log(f'PreemptionHook: {getattr(self, "_signal_name", "SIGTERM")} received; '
                  f'iteration {step} finished and checkpoint {path} saved{waited}. '
                  'The run stops here; continue it with tools/train.py CONFIG --resume.',
                  logger='current', level=30)

    def _save(self, runner) -> str:
        """The checkpoint of this iteration: the CheckpointHook's own if it has just saved
        one, else one saved now through it (every rank takes part)."""
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        hook = next((h for h in hooks if not h.by_epoch), None)
        if self._saved_iter_matches(runner):
            return getattr(hook or (hooks[0] if hooks else None), 'last_ckpt', None) or \
                'of this iteration'
        for h in runner.hooks:
            if hasattr(h, 'gather_now'):  # RNGStateHook: every rank's RNG state
                h.gather_now(runner)
        if hook is not None:
            hook._save_checkpoint(runner)  # name, last_checkpoint, max_keep_ckpts: as usual
            return hook.last_ckpt
        # no iteration-based CheckpointHook (an epoch-based run, or none): iter_N.pth
        out_dir = hooks[0].out_dir if hooks else runner.work_dir
        backend_args = hooks[0].backend_args if hooks else None
        name = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(out_dir, name, by_epoch=False, backend_args=backend_args)
        path = osp.join(out_dir, name)
        if is_main_process():
            from .atomic_checkpoint_hook import atomic_write
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), path.encode())
        return path

    def _saved_iter_matches(self, runner) -> bool:
        if get_world_size() == 1:
            return self._saved_iter == runner.iter
        # only rank 0 saves (and sees before_save_checkpoint); decide alike on every rank
        import torch
        flag = torch.tensor([int(self._saved_iter == runner.iter)], dtype=torch.int32)
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_run(self, runner) -> None:
        shutdown_train_workers(runner)
        self.release()

    def release(self) -> None:
        """Disarm and put the previous handlers back (``after_run``; tools/train.py also
        calls it when training fails, where mmengine calls no ``after_run``)."""
        self._armed = False
        if os.getpid() != self._pid or threading.current_thread() is not threading.main_thread():
            return
        if self._worker_setup is not None:
            module, original = self._worker_setup
            if isinstance(module._set_worker_signal_handlers, _IgnoringInWorkers):
                module._set_worker_signal_handlers = original
            self._worker_setup = None
        for sig, previous in list(self._previous.items()):
            if signal.getsignal(sig) == self._handle:  # not replaced by someone else since
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
                del self._previous[sig]


class _IgnoringInWorkers:
    """torch's worker signal set-up, then ``SIG_IGN`` for the preemption signals."""

    def __init__(self, original, signals) -> None:
        self.original, self.signals = original, list(signals)

    def __call__(self, *args, **kwargs):
        self.original(*args, **kwargs)
        for sig in self.signals:
            signal.signal(sig, signal.SIG_IGN)


def shutdown_train_workers(runner) -> None:
    """Stop the train loop's dataloader workers now (``after_run``; tools/train.py also calls
    it when training fails). Left to the iterator's ``__del__`` in a garbage collection at
    exit, torch's shutdown waited its 5 s join timeout per persistent worker (10 s after every
    run of the tiny configs with 2 workers); a preempted or failed run should exit promptly."""
    loop = getattr(runner, '_train_loop', None)
    obj = getattr(loop, 'dataloader_iterator', None)
    for _ in range(3):  # RNGStateHook's replay wrapper > mmengine's infinite iterator > torch's
        if obj is None:
            return
        if callable(getattr(type(obj), '_shutdown_workers', None)):
            obj._shutdown_workers()
            return
        obj = obj.__dict__.get('_iterator') if hasattr(obj, '__dict__') else None
