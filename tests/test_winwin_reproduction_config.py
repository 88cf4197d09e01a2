"""The Win-Win reproduction's configs come from its config file
(configs/winwin/experiments/) and equal, for every variant, what ``build_cfg`` built in code
before (tests/data/winwin_reproduction_cfgs.json, dumped then with the command's default
flags), but for the window transform's explicit ``patch_size`` (the backbone's, 16) and the
hooks a config now declares itself (the runtime's: weights-only loading, RNG states with
validation that leaves the training RNG alone, the label range check, atomic checkpoints,
preemption). The same-budget peers added since (random tokens, 1 / 4 windows, low
resolution) are tested in test_winwin_peers.py."""
import copy
import json
import os.path as osp

import pytest

from mmwinwin.experiments.reproduction import VARIANTS, build_cfg, tokens_per_image

SNAPSHOT = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'winwin_reproduction_cfgs.json')


with open(SNAPSHOT) as _f:
    SNAPSHOT_VARIANTS = list(json.load(_f))


@pytest.mark.parametrize('variant', SNAPSHOT_VARIANTS)
def test_every_variant_equals_the_config_built_in_code_before(variant):
    with open(SNAPSHOT) as f:
        before = json.load(f)[variant]
    cfg = build_cfg(variant, 'DATA_ROOT', 'WORK_DIR/' + variant, (192, 384), 6, 144, 600, 4,
                    2e-3, 0, log_interval=120, bg_weight=0.25, num_scenes=2)
    got = json.loads(json.dumps(cfg.to_dict(), sort_keys=True))
    windows = [t for t in got['train_dataloader']['dataset']['pipeline']
               if t['type'] == 'WinWinWindows']
    assert len(windows) == variant.startswith('winwin')
    for t in windows:  # the one difference: WinWinWindows states the backbone's patch size
        assert t.pop('patch_size') == got['model']['backbone']['patch_size'] == 16
    # the loss: mmseg's with PyTorch's weighted mean on ignored pixels (same values without)
    loss = got['model']['decode_head']['loss_decode']
    assert loss.pop('type') == 'IgnoreAwareCrossEntropyLoss'
    assert before['model']['decode_head']['loss_decode'].pop('type') == 'CrossEntropyLoss'
    for key in ('model', 'train_dataloader', 'test_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'default_hooks'):
        assert got[key] == before[key], key
    hooks = [h['type'] for h in got.pop('custom_hooks')]
    assert hooks == ['SafeCheckpointLoadingHook', 'RNGStateHook', 'LabelRangeHook',
                     'FullImagePhaseHook', 'AtomicCheckpointHook', 'PreemptionHook']
    assert before.pop('custom_hooks') == [dict(type='FullImagePhaseHook')]
    assert got == before


def test_tokens_per_image_of_every_variant():
    got = {v: tokens_per_image(v, (192, 384), 6, 144) for v in VARIANTS}
    # 12x24 tokens; 2 windows of 6x6; context cells of 4x4 tokens: 3x6; a 144 px crop: 9x9
    assert got == dict(winwin='72', fullres='288', crop='81', winwin_abspos='72',
                       winwin_ctx='90', winwin_ft='72 then 288', winwin_ctx_ft='90 then 288',
                       random_tokens='72', window1='64', windows4='64', lowres='72',
                       winwin_mix='72, every 6th 288', winwin_ft_s50='72 then 72',
                       winwin_ft_s75='72 then 162', winwin_ft_r50='72 then 288',
                       winwin_ft_r100='72 then 288', winwin_ft_r200='72 then 288',
                       winwin_ft_r100_l3='72 then 288', winwin_ft_s75_r100_l3='72 then 162',
                       winwin_ft_h50_r100_l3='72 then 288',
                       winwin_ft_k75_r100_l3='72 then 288',
                       winwin_grow_r100_l3='32 to 128 then 288',
                       winwin_shrink_r100_l3='128 to 32 then 288',
                       # a fixed 3x6 grid of context cells beside the windows
                       winwin_gridctx_max_r100_l3='90 then 288',
                       winwin_ft_h50_r100_l23='72 then 288', winwin_ft_r200_l3='72 then 288',
                       winwin_gridctx_max_r200_l3='90 then 288',
                       winwin_ft_s50_s100_r100_l23='72 then 72 then 288',
                       winwin_ft_s50_s100_r100_l56='72 then 72 then 288')
    # at patch 8 the same image has 24x48 tokens, the same pixel windows 12x12 tokens each
    assert tokens_per_image('winwin_ft_r100_l3', (192, 384), 12, 144, patch_size=8) == \
        '288 then 1152'
    assert tokens_per_image('winwin_gridctx_max_r100_l3', (192, 384), 12, 144,
                            patch_size=8) == '306 then 1152'


def test_grid_context_variants_and_the_patch_size():
    """(A) is (r) with context_tokens max-pooled on a fixed 3x6 grid; patch_size sets the
    backbone's and the window transform's patch."""
    cfg = build_cfg('winwin_gridctx_max_r100_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.context_tokens == dict(grid=(3, 6), reduce='max')
    assert cfg.model.full_image_phase == dict(begin=1600)
    assert [s['type'] for s in cfg.param_scheduler][-1] == 'CosineRestartLR'
    cfg = build_cfg('winwin_ft_r100_l3', 'D', 'W', (192, 384), 12, 144, 2400, 4, patch_size=8)
    assert cfg.model.backbone.patch_size == 8
    windows = next(t for t in cfg.train_dataloader.dataset.pipeline
                   if t['type'] == 'WinWinWindows')
    assert windows['patch_size'] == 8 and windows['window_size'] == 12
    assert build_cfg('fullres', 'D', 'W', (192, 384), 6, 144, 2400, 4).model.backbone.patch_size \
        == 16
    with pytest.raises(ValueError, match='patch_size must be a positive int'):
        build_cfg('fullres', 'D', 'W', (192, 384), 6, 144, 2400, 4, patch_size=0)


def test_short_runs_still_end_on_whole_images():
    cfg = build_cfg('winwin_ft', 'D', 'W', (64, 128), 2, 32, 2, 2)
    assert cfg.model.full_image_phase == dict(begin=1)
    cfg = copy.deepcopy(build_cfg('winwin_ft', 'D', 'W', (64, 128), 2, 32, 600, 2))
    assert cfg.model.full_image_phase == dict(begin=500)
    # the resized phases: 1/2 size for the last 1/3, 3/4 size for the last 1/6
    assert build_cfg('winwin_ft_s50', 'D', 'W', (64, 128), 2, 32, 600, 2
                     ).model.full_image_phase == dict(begin=400, scale=0.5)
    assert build_cfg('winwin_ft_s75', 'D', 'W', (64, 128), 2, 32, 2400, 2
                     ).model.full_image_phase == dict(begin=2000, scale=0.75)
    assert build_cfg('winwin_ft_s50', 'D', 'W', (64, 128), 2, 32, 2, 2
                     ).model.full_image_phase == dict(begin=1, scale=0.5)


def test_the_longer_resized_phase_restarts_the_learning_rate():
    # (s): whole images at 3/4 size from 2/3 of the run on (1600 of 2400), the learning rate
    # restarted there at the optimizer's own and annealed by a cosine to 0 at the end
    cfg = build_cfg('winwin_ft_s75_r100_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.full_image_phase == dict(begin=1600, scale=0.75)
    warm, poly, restart = cfg.param_scheduler
    assert (warm.type, warm.begin, warm.end) == ('LinearLR', 0, 240)
    assert (poly.type, poly.begin, poly.end, poly.eta_min) == ('PolyLR', 240, 1600, 0.0)
    assert (restart.type, restart.begin, restart.end) == ('CosineRestartLR', 1600, 2400)
    assert (restart.periods, restart.restart_weights, restart.eta_min) == ([800], [1.0], 0.0)


@pytest.mark.parametrize('variant, option', [
    ('winwin_ft_h50_r100_l3', dict(batch_fraction=0.5)),  # (t): each step on half its batch
    ('winwin_ft_k75_r100_l3', dict(frozen_blocks=3)),  # (u): the last of the 4 blocks trains
])
def test_the_longer_phase_variants_keep_its_schedule(variant, option):
    # (t) and (u): (r)'s phase and schedule (whole images from 1600 of 2400, the learning rate
    # restarted there), each whole-image step cheaper by the variant's one option
    cfg = build_cfg(variant, 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.full_image_phase == dict(begin=1600, **option)
    r = build_cfg('winwin_ft_r100_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.param_scheduler == r.param_scheduler
    assert cfg.train_dataloader.batch_size == r.train_dataloader.batch_size == 4


def test_the_frozen_blocks_phase_freezes_three_quarters_of_any_depth():
    deep = build_cfg('winwin_ft_k75_r100_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4,
                     num_layers=8)
    assert deep.model.full_image_phase.frozen_blocks == 6


@pytest.mark.parametrize('variant, sides', [('winwin_grow_r100_l3', (4, 5, 6, 7, 8)),
                                            ('winwin_shrink_r100_l3', (8, 7, 6, 5, 4))])
def test_the_progressive_windows_variants(variant, sides):
    # (y) and (z): (r)'s phase and schedule; the windows part in 5 stages of 320 iterations,
    # windows of side 4 .. 8 (or 8 .. 4) around the window argument 6, packed with the stages
    cfg = build_cfg(variant, 'D', 'W', (192, 384), 6, 144, 2400, 4)
    r = build_cfg('winwin_ft_r100_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model == r.model and cfg.param_scheduler == r.param_scheduler
    pipe = cfg.train_dataloader.dataset.pipeline
    win, = [t for t in pipe if t['type'] == 'WinWinWindows']
    assert win == dict(type='WinWinWindows', num_windows=2, progressive_sizes=sides,
                       patch_size=16)
    assert pipe[-1]['meta_keys'][-1] == 'winwin_window_stages'
    with pytest.raises(ValueError, match='at least 3 tokens'):
        build_cfg(variant, 'D', 'W', (192, 384), 2, 144, 2400, 4)


def test_the_half_batch_phase_over_two_thirds_and_the_doubled_restart():
    # (B): whole images on half of each batch from 1/3 of the run on (800 of 2400), the windows
    # part's schedule cut there and the learning rate restarted at the optimizer's own
    cfg = build_cfg('winwin_ft_h50_r100_l23', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.full_image_phase == dict(begin=800, batch_fraction=0.5)
    warm, poly, restart = cfg.param_scheduler
    assert (warm.begin, warm.end, poly.begin, poly.end) == (0, 240, 240, 800)
    assert (restart.begin, restart.end, restart.periods, restart.restart_weights) == \
        (800, 2400, [1600], [1.0])
    # (C): (r)'s phase (from 1600 of 2400) with its first learning rate twice the config's
    cfg = build_cfg('winwin_ft_r200_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.full_image_phase == dict(begin=1600)
    *_, restart = cfg.param_scheduler
    assert (restart.begin, restart.periods, restart.restart_weights) == (1600, [800], [2.0])
    # (D): (A)'s context tokens with (C)'s schedule
    cfg = build_cfg('winwin_gridctx_max_r200_l3', 'D', 'W', (192, 384), 6, 144, 2400, 4)
    assert cfg.model.context_tokens == dict(grid=(3, 6), reduce='max')
    assert cfg.param_scheduler == build_cfg('winwin_ft_r200_l3', 'D', 'W', (192, 384), 6, 144,
                                            2400, 4).param_scheduler


def test_the_two_stage_phase_half_size_then_full_size():
    # (E): windows to 1/3 of the run (800 of 2400), where the learning rate restarts at the
    # optimizer's own; whole images at half size to 2/3 (1600), at full size from there
    cfg = build_cfg('winwin_ft_s50_s100_r100_l23', 'D', 'W', (192, 384), 12, 144, 2400, 4,
                    patch_size=8)
    assert cfg.model.full_image_phase == dict(begin=800, scale=0.5, full_size_fraction=2 / 3)
    warm, poly, restart = cfg.param_scheduler
    assert (warm.begin, warm.end, poly.begin, poly.end) == (0, 240, 240, 800)
    assert (restart.begin, restart.end, restart.periods, restart.restart_weights) == \
        (800, 2400, [1600], [1.0])
    # at patch 8 the half-size image has the windows' tokens: 12x24 = 2 windows of 12x12
    assert tokens_per_image('winwin_ft_s50_s100_r100_l23', (192, 384), 12, 144,
                            patch_size=8) == '288 then 288 then 1152'
    # (F): the same stages with the half-size one (and the restart) from 1/6 (400 of 2400)
    cfg = build_cfg('winwin_ft_s50_s100_r100_l56', 'D', 'W', (192, 384), 12, 144, 2400, 4,
                    patch_size=8)
    assert cfg.model.full_image_phase == dict(begin=400, scale=0.5, full_size_fraction=2 / 3)
    warm, poly, restart = cfg.param_scheduler
    assert (warm.end, poly.end, restart.begin, restart.periods) == (240, 400, 400, [2000])
