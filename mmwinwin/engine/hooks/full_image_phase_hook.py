"""``FullImagePhaseHook``: tell a Win-Win model the training iteration, for its full-image phase.

A Win-Win model with ``full_image_phase=dict(begin=N)`` trains on windows before iteration N
and on whole images from N on (``mmwinwin/models/winwin/full_image_phase.py``). The model
cannot see the iteration, so before every training iteration this hook hands it
``runner.iter`` (0-based, the iteration about to run) and ``runner.max_iters``.

Why a hook and not mmengine's message hub: the hub is a process-wide "current instance" that
the model would have to read from inside ``loss`` (hidden global state, stale when several
runners live in one process, as in tests), while the hook sets one explicit attribute from
the runner that owns the model. ``runner.iter`` is restored by ``--resume`` before the first
``before_train_iter``, so a resumed run continues in the right phase exactly.

Models without the option are left alone, so every config of this project declares it
(``configs/_base_/mmwinwin_hooks.py``); a Win-Win model with the option refuses to train
without it (it would never leave the windows).
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch.nn.parallel import DistributedDataParallel

from ...registry import register

__all__ = ['FullImagePhaseHook']


@register('HOOKS')
class FullImagePhaseHook(Hook):
    """Set ``model.set_train_progress(runner.iter, runner.max_iters)`` before each
    training iteration; log where the whole-image phase begins."""

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        setting = getattr(model, 'full_image_phase', None)
        if setting is None or not hasattr(model, 'set_train_progress'):
            return
        from ...models.winwin.full_image_phase import full_image_phase_begin
        begin = full_image_phase_begin(setting, runner.max_iters)  # refuses begin >= max_iters
        self._check_unused_parameters(runner, setting)
        if setting.get('every') is not None:
            every = setting['every']
            print_log(f'Win-Win whole images every {every}th iteration (iterations {begin}, '
                      f'{begin + every}, ...: {runner.max_iters // every} of '
                      f'{runner.max_iters}), windows otherwise.', logger='current')
            return
        print_log(f'Win-Win full-image phase: iterations {begin} .. {runner.max_iters - 1} '
                  f'train on whole images ({runner.max_iters - begin} of {runner.max_iters}); '
                  f'iterations before {begin} on windows.', logger='current')

    @staticmethod
    def _check_unused_parameters(runner, setting: dict) -> None:
        """``frozen_blocks`` leaves parameters without a gradient in the phase's steps; torch's
        DDP then stops with "Expected to have finished reduction" unless it looks for them."""
        frozen = setting.get('frozen_blocks')
        wrapper = runner.model
        if frozen and isinstance(wrapper, DistributedDataParallel) and \
                not wrapper.find_unused_parameters:
            raise ValueError(
                f'full_image_phase.frozen_blocks={frozen}: the phase gives the first {frozen} '
                f"blocks no gradient, and the DDP wrapper's find_unused_parameters is False, "
                f'so distributed training would stop at the first whole-image step. Add '
                f"model_wrapper_cfg=dict(type='MMDistributedDataParallel', "
                f'find_unused_parameters=True) to the config.')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = self._model(runner)
        if hasattr(model, 'set_train_progress'):
            was = getattr(model, 'train_iteration', None) is not None and \
                model.in_full_image_phase()
            model.set_train_progress(runner.iter, runner.max_iters)
            interleaved = (getattr(model, 'full_image_phase', None) or {}).get('every')
            if model.in_full_image_phase() and not was and not interleaved:
                print_log(f'Win-Win full-image phase: iteration {runner.iter} onwards trains '
                          f'on whole images.', logger='current')
