"""The phase's own learning rate (``phase_restart_schedule``), run through mmengine's own
schedulers and held against the rule written out here: linear warm-up, linear decay to 0 at
the phase, then a cosine from ``restart`` x lr to 0."""
import copy
import math

import pytest
import torch
from mmengine.optim.scheduler import CosineRestartLR, LinearLR, PolyLR  # noqa: F401 (registry)
from mmengine.registry import PARAM_SCHEDULERS

from mmwinwin.engine import phase_restart_schedule
from mmwinwin.experiments.reproduction import build_cfg

LR, WARM, BEGIN, ITERS = 2e-3, 24, 200, 240
WINDOWS_PART = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=WARM),
    dict(type='PolyLR', power=1.0, begin=WARM, end=ITERS, eta_min=0.0, by_epoch=False)]


def expected_lr(t: int, restart: float, begin: int = BEGIN, warm: int = WARM,
                iters: int = ITERS) -> float:
    # mmengine's LinearLR / PolyLR over [b, e) reach their final factor at iteration e - 1
    if t < warm:
        return LR * (0.1 + 0.9 * min(t / (warm - 1), 1))
    if t < begin:
        return LR * (1 - (t - warm) / (begin - 1 - warm))
    return LR * restart * (1 + math.cos(math.pi * (t - begin) / (iters - begin))) / 2


def lrs_of(schedule: list[dict], iters: int = ITERS) -> list[float]:
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=LR)
    scheds = [PARAM_SCHEDULERS.build(dict(copy.deepcopy(s), optimizer=opt)) for s in schedule]
    out = []
    for _ in range(iters):  # the lr of each training iteration, as ParamSchedulerHook steps
        out.append(opt.param_groups[0]['lr'])
        for s in scheds:
            s.step()
    return out


@pytest.mark.parametrize('restart', [1.0, 0.5])
def test_learning_rate_follows_the_rule(restart):
    got = lrs_of(phase_restart_schedule(WINDOWS_PART, BEGIN, ITERS, restart))
    want = [expected_lr(t, restart) for t in range(ITERS)]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert got[BEGIN - 1] < LR * 0.01 and got[BEGIN] == pytest.approx(LR * restart)


def test_input_schedule_is_not_changed():
    before = copy.deepcopy(WINDOWS_PART)
    phase_restart_schedule(WINDOWS_PART, BEGIN, ITERS)
    assert WINDOWS_PART == before


def test_experiment_variant_uses_it():
    cfg = build_cfg('winwin_ft_r100', '/nonexistent', '/nonexistent', (192, 384), 6, 96,
                    2400, 4)
    assert cfg.model.full_image_phase == dict(begin=2000)
    got = lrs_of(cfg.param_scheduler, 2400)
    want = [expected_lr(t, 1.0, 2000, 240, 2400) for t in range(2400)]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)


def test_tiny_segmentation_config_runs_the_rule():
    """The tiny Win-Win config (20 iterations, poly decay): 0 at iteration 12, the
    optimizer's lr at the phase's first iteration (13 = 2/3 of 20), a cosine over 7 after."""
    from mmengine.config import Config

    from mmwinwin.experiments import repo_path
    cfg = Config.fromfile(repo_path('configs', 'winwin', 'winwin-2x4_upernet_rope-vit-tiny_'
                                    '1xb2-20i_synthetic-ade20k-128x256.py'))
    lr = cfg.optim_wrapper.optimizer.lr
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=lr)
    scheds = [PARAM_SCHEDULERS.build(dict(copy.deepcopy(dict(s)), optimizer=opt))
              for s in cfg.param_scheduler]
    got = []
    for _ in range(20):
        got.append(opt.param_groups[0]['lr'])
        for s in scheds:
            s.step()
    want = [lr * (1 - t / 12) for t in range(13)]
    want += [lr * (1 + math.cos(math.pi * k / 7)) / 2 for k in range(7)]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize('kwargs, match', [
    (dict(begin=0), 'begin inside the run'),
    (dict(begin=ITERS), 'begin inside the run'),
    (dict(restart=0.0), 'restart must be > 0'),
    (dict(schedule=[dict(type='LinearLR', by_epoch=True, begin=0, end=5)]), 'by_epoch=False'),
    (dict(schedule=[dict(type='CosineAnnealingMomentum', by_epoch=False, begin=0, end=5)]),
     'LR schedulers only'),
    (dict(schedule=[dict(type='PolyLR', by_epoch=False, begin=BEGIN, end=ITERS)]),
     'not before the phase'),
])
def test_bad_input_is_refused(kwargs, match):
    args = dict(schedule=WINDOWS_PART, begin=BEGIN, max_iters=ITERS, restart=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        phase_restart_schedule(**args)
