"""Window sizes that change over training: which of the windows that
``WinWinWindows(progressive_sizes=...)`` drew a training step uses.

With ``progressive_sizes=(s_0, ..., s_{K-1})`` the transform records one set of windows per
side (``winwin_window_stages``). The model splits the windows part of the run, iterations
``[0, E)`` with ``E`` the whole-image phase's first iteration (``full_image_phase`` with
``begin`` / ``begin_fraction``) or ``max_iters`` without a phase, into ``K`` equal stages, and
iteration ``i`` trains on the windows of stage ``min(K - 1, floor(K * i / E))``, side
``s_k``: with growing sides small windows first, the largest last, then (with a phase) whole
images, as progressive resizing trains on small images first; with shrinking sides the
reverse. The iteration comes from ``FullImagePhaseHook``, as the phase's does, so
a resumed run continues in its stage. A design option of this project (the paper keeps one
window size); segmentors and depth estimators only (:func:`refuse_window_stages` elsewhere).
"""
from __future__ import annotations

from .full_image_phase import _HOOK, full_image_phase_begin

__all__ = ['window_stage', 'stage_windows', 'refuse_window_stages']

STAGES_KEY = 'winwin_window_stages'


def window_stage(stages: int, iteration: int, max_iters: int | None,
                 phase: dict | None = None) -> int:
    """The stage (0-based) of ``iteration`` among ``stages`` equal stages of the windows part
    of a ``max_iters`` run whose whole-image phase is ``phase`` (``None``: none)."""
    if phase is not None and phase.get('every') is not None:
        raise ValueError(f'progressive window sizes split the windows part of the run into '
                         f'stages; full_image_phase={phase} interleaves whole images with no '
                         f'windows part to split. Use full_image_phase=dict(begin_fraction=f) '
                         f'or drop WinWinWindows.progressive_sizes.')
    end = max_iters if phase is None else full_image_phase_begin(phase, max_iters)
    if end is None:
        raise ValueError('progressive window sizes need the run length (max_iters): '
                         + _HOOK + '.')
    return min(stages - 1, stages * int(iteration) // max(int(end), 1))


def stage_windows(metas: list, model) -> list | None:
    """Per sample, the windows of the step's stage when the pipeline drew progressive sizes
    (``None`` when it did not); ``model`` is a :class:`FullImagePhaseMixin`."""
    have = [STAGES_KEY in m for m in metas]
    if not any(have):
        return None
    counts = {len(m[STAGES_KEY]) for m in metas if STAGES_KEY in m}
    if not all(have) or len(counts) != 1:
        raise ValueError('A training batch mixes samples with and without (or with different '
                         'numbers of) progressive window stages: use one WinWinWindows('
                         'progressive_sizes=...) for the whole training pipeline.')
    if model.train_iteration is None:
        raise RuntimeError(f'{type(model).__name__} got progressive window sizes '
                           f'(WinWinWindows.progressive_sizes) but does not know the training '
                           f'iteration: {_HOOK}.')
    k = window_stage(counts.pop(), model.train_iteration, model.train_max_iters,
                     model.full_image_phase)
    return [m[STAGES_KEY][k] for m in metas]


def refuse_window_stages(metas: list, model_name: str) -> None:
    """A clear error for a model that trains on one window size when the pipeline drew
    progressive sizes."""
    if any(STAGES_KEY in m for m in metas):
        raise ValueError(f'WinWinWindows(progressive_sizes=...) grows the windows over training '
                         f'for the Win-Win segmentors and depth estimators; {model_name} trains '
                         f'on one window size. Use window_size=... in its WinWinWindows.')
