"""``RNGStateHook``: save every random-number state in checkpoints, restore it on resume.

Dropout, drop-path and the data pipeline's augmentations draw from the global RNGs of
torch, NumPy and Python; mmengine seeds them once per run but does not save them, so a
run resumed with ``--resume`` continues from a fresh stream and drifts away from the
run it resumes (different dropout masks, BatchNorm statistics, weights). This hook puts
into each checkpoint, under ``checkpoint['rng_state']``, for every rank:

* the torch CPU (and, when initialised, CUDA) generator states, NumPy's and Python's
  global states;
* the state of every ``torch.Generator`` attribute of the model's modules (a model that
  keeps a private stream of its own).

On resume it restores them at the point the original run had reached. mmengine's
``IterBasedTrainLoop`` first replays the dataloader up to the resumed iteration (so the
sampler and the pipeline's private streams, such as ``WinWinWindows``' in the main process
or in dataloader workers, continue exactly); that replay also draws from the main
process's global RNGs when ``num_workers=0``, so the states are restored *after* the
replay, just before the first new batch is fetched. Validation inside training is made
RNG-neutral (states saved before, restored after), so a run validated at an iteration
and one resumed there continue alike.

Every config of this project declares it (``configs/_base_/mmwinwin_hooks.py``).
"""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from ...registry import register

__all__ = ['RNGStateHook', 'capture_rng_state', 'restore_rng_state', 'model_generators']


def model_generators(model: torch.nn.Module) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` held as an attribute of a module of ``model``,
    keyed ``'<module name>.<attribute>'``."""
    if is_model_wrapper(model):
        model = model.module
    out = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                out[f'{name}.{attr}' if name else attr] = value
    return out


def capture_rng_state(model: torch.nn.Module | None = None) -> dict:
    """This process's RNG states, as tensors / ints / lists only (so the checkpoint
    still loads with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(kind=str(kind), keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), gauss=float(gauss)),
        python=dict(version=int(version), internal=torch.tensor(internal, dtype=torch.int64),
                    gauss_next=gauss_next),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    if model is not None:
        state['generators'] = {k: g.get_state() for k, g in model_generators(model).items()}
    return state


def restore_rng_state(state: dict, model: torch.nn.Module | None = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['gauss']))
    p = state['python']
    random.setstate((p['version'], tuple(int(v) for v in p['internal'].tolist()),
                     p['gauss_next']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    if model is not None and 'generators' in state:
        own = model_generators(model)
        missing = sorted(set(state['generators']) - set(own))
        if missing:
            raise KeyError(f'The checkpoint holds generator states for {missing}, which the '
                           f'model built from the config does not have (it has '
                           f'{sorted(own)}); resume with the config the run was trained with.')
        for key, gen_state in state['generators'].items():
            own[key].set_state(gen_state)


class _RestoreAfterReplay:
    """Wraps the train loop's dataloader iterator: after ``skip`` batches (mmengine's
    replay of the already-trained iterations) it calls ``restore`` once, before the next
    batch is fetched."""

    def __init__(self, iterator, skip: int, restore: Callable[[], None]) -> None:
        self._iterator = iterator
        self._skip = skip
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip == 0 and self._restore is not None:
            self._restore()
            self._restore = None
        self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@register('HOOKS')
class RNGStateHook(Hook):
    """Save all RNG states of every rank in each checkpoint; restore them on resume."""

    priority = 'VERY_HIGH'  # capture before CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._gathered: tuple[int, list[dict]] | None = None
        self._resumed: dict | None = None
        self._before_val: dict | None = None

    # ------------------------------------------------------------------ saving
    def _checkpoint_due(self, runner, by_epoch: bool) -> bool:
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or hook.by_epoch != by_epoch:
                continue
            if by_epoch:
                if hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
                        hook.save_last and hook.is_last_train_epoch(runner)):
                    return True
            elif hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
                    hook.save_last and hook.is_last_train_iter(runner)):
                return True
        return False

    def _gather_if_due(self, runner, by_epoch: bool) -> None:
        # Only rank 0 writes checkpoints (before_save_checkpoint runs there only), so the
        # other ranks' states are gathered here, on every rank, when a save is due.
        if get_world_size() > 1 and self._checkpoint_due(runner, by_epoch):
            self._gathered = (runner.iter, all_gather_object(capture_rng_state(runner.model)))

    def gather_now(self, runner) -> None:
        """Gather every rank's RNG state for a checkpoint saved outside the CheckpointHook
        schedule at this iteration (``PreemptionHook``); call it on every rank."""
        if get_world_size() > 1:
            self._gathered = (runner.iter, all_gather_object(capture_rng_state(runner.model)))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather_if_due(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_due(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if get_world_size() == 1:
            ranks = [capture_rng_state(runner.model)]
        elif self._gathered is not None and self._gathered[0] == runner.iter:
            ranks = self._gathered[1]
        else:
            runner.logger.warning(
                'RNGStateHook: this checkpoint was saved outside the CheckpointHook schedule '
                '(e.g. a best-metric checkpoint); it holds rank 0\'s RNG state only.')
            ranks = [capture_rng_state(runner.model)]
        checkpoint['rng_state'] = dict(world_size=len(ranks), ranks=ranks)

    # ---------------------------------------------------------------- restoring
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = checkpoint.get('rng_state')
        if self._resumed is None and getattr(runner, '_resume', False):
            runner.logger.warning(
                'RNGStateHook: the checkpoint has no RNG state (written without this hook), '
                'so the resumed run draws fresh random numbers and will not repeat the '
                'original run exactly.')

    def before_train(self, runner) -> None:
        saved, self._resumed = self._resumed, None
        if saved is None or not getattr(runner, '_resume', False):
            return  # load_from (fine-tuning) keeps the run's own fresh streams
        world, rank = get_world_size(), get_rank()
        if saved['world_size'] != world:
            runner.logger.warning(
                f'RNGStateHook: the checkpoint holds RNG states of {saved["world_size"]} '
                f'rank(s) but this run has {world}; RNG states are not restored, so the '
                'resumed run will not repeat the original one exactly.')
            return
        state, model = saved['ranks'][rank], runner.model

        def restore() -> None:
            restore_rng_state(state, model)

        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator') and loop.iter > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(loop.dataloader_iterator,
                                                           loop.iter, restore)
        else:
            restore()
        runner.logger.info(f'RNGStateHook: the RNG states saved at iteration {loop.iter} are '
                           'restored before the first new batch (after the dataloader '
                           'replay).')

    # ------------------------------------------------- validation leaves RNG alone
    def before_val(self, runner) -> None:
        self._before_val = capture_rng_state(runner.model)

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_rng_state(self._before_val, runner.model)
            self._before_val = None
