"""Progressive window sizes (``WinWinWindows(progressive_sizes=...)``): one set of uniform
windows per side, stage ``k`` of the windows part trained on side ``k`` (docs/winwin.md,
variant (y)).

The stage rule is written out here from its statement (the windows part ``[0, E)`` cut into
``K`` equal stages, ``E`` the phase's begin or ``max_iters``), each stage's windows are held
to the uniform placement Win-Win draws (a chi-square on the placements), the model's loss in
a stage to the same model given that stage's windows as ordinary windows, and the stage
switch to a real mmengine Runner with ``--resume``."""
from __future__ import annotations

import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import MODELS

import mmwinwin  # noqa: F401
from mmwinwin.datasets.winwin import WinWinPackSegInputs, WinWinWindows
from mmwinwin.models.flow import WinWinFlowEstimator
from mmwinwin.models.winwin.window_stages import refuse_window_stages, window_stage
from test_winwin_full_image_phase import _runner_cfg, _seg_batch, _seg_cfg, ade  # noqa: F401

STAGES = [[[(0, 0, 2, 2), (2, 3, 2, 2)], [(0, 0, 3, 3), (0, 3, 3, 3)]],
          [[(1, 1, 2, 2), (0, 4, 2, 2)], [(1, 2, 3, 3), (0, 0, 1, 1)]]]


def _staged(samples):
    for s, stages in zip(samples, STAGES):
        meta = dict(s.metainfo)
        meta.pop('winwin_windows')
        s.set_metainfo(dict(meta, winwin_window_stages=stages))
    return samples


def test_each_side_gets_its_own_uniform_windows():
    """Stage k holds ``num_windows`` non-overlapping windows of side ``progressive_sizes[k]``
    inside the image, placed uniformly: one 2x2 and one 3x3 window in a 4x5 token grid, over
    6000 images, against 12 and 6 equally likely top-left corners."""
    t = WinWinWindows(num_windows=1, progressive_sizes=(2, 3), patch_size=4, seed=0)
    counts = [torch.zeros(3, 4), torch.zeros(2, 3)]
    draws = 6000
    for _ in range(draws):
        out = t.transform(dict(img=torch.zeros(16, 20, 3).numpy()))
        assert 'winwin_windows' not in out and out['winwin_grid'] == (4, 5)
        for k, ((top, left, h, w),) in enumerate(out['winwin_window_stages']):
            assert h == w == (2, 3)[k]
            counts[k][top, left] += 1
    for c, dof, bound in ((counts[0], 11, 35), (counts[1], 5, 25)):  # p(chi2 > bound) < 1e-3
        expected = draws / c.numel()
        assert ((c - expected) ** 2 / expected).sum() < bound, (c, dof)

    two = WinWinWindows(num_windows=2, progressive_sizes=(4, 5, 6, 7, 8), patch_size=16, seed=3)
    again = WinWinWindows(num_windows=2, progressive_sizes=(4, 5, 6, 7, 8), patch_size=16, seed=3)
    img = torch.zeros(192, 384, 3).numpy()
    for _ in range(20):
        stages = two.transform(dict(img=img))['winwin_window_stages']
        assert stages == again.transform(dict(img=img))['winwin_window_stages']  # seeded stream
        for side, wins in zip((4, 5, 6, 7, 8), stages):
            assert len(wins) == 2
            cells = [{(y, x) for y in range(t_, t_ + h) for x in range(l_, l_ + w)}
                     for t_, l_, h, w in wins]
            assert all(h == w == side for _, _, h, w in wins)
            assert not cells[0] & cells[1]
            assert all(0 <= y < 12 and 0 <= x < 24 for c in cells for y, x in c)


@pytest.mark.parametrize('stages, iters, phase, want', [
    # 5 stages of the first 1600 of 2400 iterations (the phase from 1600): 320 each
    (5, 2400, dict(begin=1600), {0: 0, 319: 0, 320: 1, 639: 1, 640: 2, 1279: 3, 1280: 4,
                                 1599: 4, 2399: 4}),
    # begin_fraction 2/3 of 2400 is the same begin
    (5, 2400, dict(begin_fraction=2 / 3), {319: 0, 320: 1, 1599: 4}),
    # no phase: the whole run, 4 stages of 25 of 100 iterations
    (4, 100, None, {0: 0, 24: 0, 25: 1, 49: 1, 50: 2, 75: 3, 99: 3}),
])
def test_stage_of_an_iteration(stages, iters, phase, want):
    assert {i: window_stage(stages, i, iters, phase) for i in want} == want


def test_the_model_trains_each_stage_on_its_windows():
    """A step in stage k gives the loss of the same model trained on stage k's windows as
    ordinary ``winwin_windows``; with a phase from iteration 2 of 4 the two stages are
    iterations 0 and 1, and iteration 2 is the whole-image phase."""
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=2)))
    img, plain = _seg_batch()
    for it, stage in ((0, 0), (1, 1)):
        _, samples = _seg_batch()
        for s, stages in zip(samples, STAGES):
            s.set_metainfo(dict(s.metainfo, winwin_windows=stages[stage]))
        model.set_train_progress(it, 4)
        want = model.loss(img, samples)['decode.loss_ce']
        got = model.loss(img, _staged(_seg_batch()[1]))['decode.loss_ce']
        torch.testing.assert_close(got, want)
    model.set_train_progress(2, 4)
    host = model.loss(img, plain)['decode.loss_ce']  # the phase ignores windows of any kind
    torch.testing.assert_close(model.loss(img, _staged(_seg_batch()[1]))['decode.loss_ce'], host)


def test_named_errors():
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder'))
    img, samples = _seg_batch()
    with pytest.raises(RuntimeError, match='FullImagePhaseHook'):
        model.loss(img, _staged(samples))
    every = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(every=3)))
    every.set_train_progress(0, 6)
    with pytest.raises(ValueError, match='interleaves whole images'):
        every.loss(img, _staged(_seg_batch()[1]))
    mixed = _seg_batch()[1]
    _staged(mixed[:1])
    model.set_train_progress(0, 4)
    with pytest.raises(ValueError, match='mixes samples'):
        model.loss(img, mixed)
    for kwargs, match in ((dict(progressive_sizes=(4,)), 'at least two'),
                          (dict(progressive_sizes=(4, 5.0)), 'must be an int'),
                          (dict(progressive_sizes=(4, 6), window_size=6), 'drop window_size'),
                          (dict(progressive_sizes=(4, 6), token_budget=72), 'token_budget=72'),
                          (dict(progressive_sizes=(4, 6), same_class_pairs=0.5),
                           'same_class_pairs=0.5'),
                          (dict(progressive_sizes=(4, 6), mode='random_tokens'), "mode='windows'")):
        with pytest.raises((ValueError, TypeError), match=match):
            WinWinWindows(patch_size=16, **kwargs)
    with pytest.raises(ValueError, match='do not fit'):
        WinWinWindows(progressive_sizes=(4, 13), patch_size=16).transform(
            dict(img=torch.zeros(192, 384, 3).numpy(), img_path='a.png'))
    drawn = WinWinWindows(progressive_sizes=(2, 3), patch_size=16).transform(
        dict(img=torch.zeros(64, 96, 3).numpy()))
    with pytest.raises(ValueError, match="pixels='image'"):
        WinWinPackSegInputs(pixels='windows').transform(drawn)
    with pytest.raises(ValueError, match='one window size'):
        refuse_window_stages([dict(winwin_window_stages=STAGES[0])], 'WinWinTwoStageDetector')
    sample = _staged(_seg_batch()[1])[0]
    with pytest.raises(ValueError, match='WinWinFlowEstimator trains on one window size'):
        WinWinFlowEstimator.batch_windows([sample])


class SideRecorder:
    """Records the window side the model trained on at every iteration."""

    def __init__(self, model):
        self.sides = []
        self._loss = model._window_loss

        def spy(inputs, samples, windows, *args):
            self.sides.append({w[2] for wins in windows for w in wins})
            return self._loss(inputs, samples, windows, *args)
        model._window_loss = spy


def test_runner_switches_stages_and_resumes_in_its_stage(ade, tmp_path):  # noqa: F811
    """Through mmengine's Runner (``FullImagePhaseHook``): 4 iterations, the phase from 2,
    sides (2, 4): iteration 0 on 2x2 windows, 1 on 4x4, then whole images; resumed from the
    checkpoint of iteration 1, the run continues on 4x4 windows."""
    def cfg(**over):
        c = _runner_cfg(ade, tmp_path / 'run', **over)
        pipe = c.train_dataloader.dataset.pipeline
        at = next(i for i, t in enumerate(pipe) if t['type'] == 'WinWinWindows')
        pipe[at] = dict(type='WinWinWindows', num_windows=2, progressive_sizes=(2, 4),
                        patch_size=16)
        return c

    runner = Runner.from_cfg(cfg())
    rec = SideRecorder(runner.model)
    runner.train()
    assert rec.sides == [{2}, {4}]
    resumed = Runner.from_cfg(cfg(resume=True, load_from=str(tmp_path / 'run' / 'iter_1.pth')))
    rec = SideRecorder(resumed.model)
    resumed.train()
    assert rec.sides == [{4}]
