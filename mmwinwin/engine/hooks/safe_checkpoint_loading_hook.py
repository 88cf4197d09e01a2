"""``SafeCheckpointLoadingHook``: weights-only checkpoint loading for a whole run, from the config.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and an mmengine Runner
checkpoint holds message-hub objects and numpy arrays, so under mmengine 0.10.7 a plain
``load_from`` / ``--resume`` of a checkpoint the Runner itself wrote fails; turning the check
off (``weights_only=False``) would run whatever a file pickles. This hook opens
:func:`mmwinwin.utils.checkpoint.safe_checkpoint_loading` before the run and closes it after:
in between, the Runner's ``load_from`` / ``resume`` and every ``init_cfg=dict(type='Pretrained')``
load with ``weights_only=True`` and mmwinwin's short allow-list (mmengine's Runner state,
CroCo's pre-training arguments); a file holding anything else is refused, naming the file.

mmengine calls ``before_run`` before it initialises weights and loads or resumes, in
``Runner.train()``, ``Runner.val()`` and ``Runner.test()`` alike, and ``before_train`` /
``before_val`` / ``before_test`` right after, so a config switches safe loading on for the
run's loading with one line (every config of this project does, in
``configs/_base_/mmwinwin_hooks.py``)::

    custom_hooks = [dict(type='SafeCheckpointLoadingHook')]

Nothing outside the run is changed: mmengine's loaders are put back as they were once the
loading is done (``before_train`` / ``before_val`` / ``before_test``), and by ``after_run`` at
the latest. mmengine has no hook for a run that raises; a load that raises (a refused file)
leaves the safe loaders in place in that process, which only makes later loads stricter.
"""
from __future__ import annotations

from mmengine.hooks import Hook

from ...registry import register

__all__ = ['SafeCheckpointLoadingHook']


@register('HOOKS')
class SafeCheckpointLoadingHook(Hook):
    """Route the run's checkpoint loads through mmwinwin's weights-only loader."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._context = None

    def before_run(self, runner) -> None:
        from ...utils.checkpoint import safe_checkpoint_loading
        if self._context is None:
            self._context = safe_checkpoint_loading()
            self._context.__enter__()

    def _restore(self, runner=None) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    # the checkpoints are loaded (weights initialised, load_from / resume) before the loops
    before_train = before_val = before_test = after_run = _restore
