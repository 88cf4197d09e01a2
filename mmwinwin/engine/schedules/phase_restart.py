"""A whole-image phase with its own learning rate.

The recipe's phase (``full_image_phase``) runs under the config's schedule, which by then has
decayed to a small fraction of its peak. :func:`phase_restart_schedule` gives the phase a
fine-tuning schedule of its own instead: the config's schedulers end at the phase (so the
windows part decays fully, to their ``eta_min``, on its own), and from the phase's first
iteration mmengine's ``CosineRestartLR`` restarts the learning rate at ``restart`` times the
optimizer's and anneals it to 0 by ``max_iters``. In a config it reads::

    param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup),
        dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup, end=begin),
        dict(type='CosineRestartLR', periods=[max_iters - begin], restart_weights=[1.0],
             eta_min=0.0, by_epoch=False, begin=begin, end=max_iters)]
"""
from __future__ import annotations

import copy


def phase_restart_schedule(schedule: list[dict], begin: int, max_iters: int,
                           restart: float = 1.0) -> list[dict]:
    """``schedule`` (mmengine iteration-based scheduler configs) ended at ``begin`` and
    followed by a cosine restart of the learning rate over ``[begin, max_iters)``.

    Args:
        schedule: the windows part's schedulers; every one must be iteration-based and begin
            before ``begin``; those that end after ``begin`` are cut to end there.
        begin: the whole-image phase's first iteration (``full_image_phase_begin``).
        max_iters: the run's last iteration + 1.
        restart: the phase's first learning rate over the optimizer's (the config's ``lr``).
    """
    if not 0 < begin < max_iters:
        raise ValueError(f'The phase must begin inside the run: begin={begin}, '
                         f'max_iters={max_iters}; give 0 < begin < max_iters.')
    if not restart > 0:
        raise ValueError(f'restart must be > 0 (the phase\'s first LR over the config\'s), '
                         f'got {restart}.')
    out = []
    for sched in copy.deepcopy(list(schedule)):
        if sched.get('by_epoch', True) or 'LR' not in sched['type']:
            raise ValueError(f'{sched["type"]} (by_epoch={sched.get("by_epoch", True)}): the '
                             'phase restart takes iteration-based LR schedulers only; give '
                             'by_epoch=False (momentum and other parameters are not restarted).')
        if sched.get('begin', 0) >= begin:
            raise ValueError(f'{sched["type"]} begins at {sched.get("begin", 0)}, not before '
                             f'the phase ({begin}); drop it or begin it earlier.')
        sched['end'] = min(sched.get('end', max_iters), begin)
        out.append(sched)
    out.append(dict(type='CosineRestartLR', periods=[max_iters - begin],
                    restart_weights=[float(restart)], eta_min=0.0, by_epoch=False,
                    begin=begin, end=max_iters))
    return out
