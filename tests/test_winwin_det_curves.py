"""mmwinwin.experiments.winwin_det_curves: its panoptic mode (tiny Mask2Former, PQ on whole images)
builds, trains and validates end to end on generated COCO data, and the tables it writes
are computed from the points it recorded (recomputed here from curves.json)."""
import json
import os.path as osp
import shutil

import numpy as np
import pytest

from documented import REPO, command_argv, run_in_process

TOOL = 'python -m mmwinwin.experiments.winwin_det_curves'
# the documented commands (module docstring) this file runs at a tiny size
PANOPTIC = (TOOL + ' --model mask2former-panoptic --tasks context --variants fullres winwin '
            'crop winwin_long --long-factor 1.6 --iters 600 --val-every 100 --out '
            'work_dirs/det_panoptic_curves')
PLOT_ONLY = TOOL + ' --plot-only --out work_dirs/det_curves'
LABELS = {'fullres': 'full resolution', 'winwin': 'Win-Win, 2 windows',
          'crop': 'crop, same token budget',
          'winwin_long': 'Win-Win, 2 windows, longer (equal time)'}


def _equal_iteration_rows(results, task, metric):
    """The table rows an equal-iteration table must hold, computed here: per variant, the
    mean and (population) std over seeds at each validation point, and the mean CPU s."""
    rows = []
    for variant in dict.fromkeys(r['variant'] for r in results if r['task'] == task):
        runs = [r['points'] for r in results if r['task'] == task and r['variant'] == variant]
        n = min(len(p) for p in runs)
        cells = []
        for i in range(n):
            v = [p[i][metric] for p in runs]
            t = sum(p[i]['cpu_s'] for p in runs) / len(runs)
            cells.append(f'{np.mean(v):.1f} +- {np.std(v):.1f} ({t:.0f} s)')
        rows.append(f'| {LABELS[variant]} | {len(runs)} | ' + ' | '.join(cells) + ' |')
    return rows


def _equal_time_rows(results, task, metric):
    """Rows of the equal-time table, computed here: at the full-resolution runs' mean CPU
    seconds of each validation point (full resolution: that point), each seed's last point
    within those seconds + 5 %."""
    ref = [r['points'] for r in results if r['task'] == task and r['variant'] == 'fullres']
    times = [np.mean([p[i]['cpu_s'] for p in ref]) for i in range(min(map(len, ref)))]
    rows = []
    for variant in dict.fromkeys(r['variant'] for r in results if r['task'] == task):
        runs = [r['points'] for r in results if r['task'] == task and r['variant'] == variant]
        cells = []
        for i, t in enumerate(times):
            last = []
            for pts in runs:
                if variant == 'fullres':  # the reference: its own i-th point
                    last.append(pts[i])
                    continue
                before = [q for q in pts if q['cpu_s'] <= 1.05 * t]
                last.append(max(before, key=lambda q: q['iter']) if before else None)
            if any(q is None for q in last):
                cells.append('-')
            else:
                v = [q[metric] for q in last]
                it = np.mean([q['iter'] for q in last])
                cells.append(f'{np.mean(v):.1f} +- {np.std(v):.1f} ({it:.0f} it)')
        rows.append(f'| {LABELS[variant]} | ' + ' | '.join(cells) + ' |')
    return [f'{t:.0f} s' for t in times], rows


@pytest.fixture(scope='module')
def panoptic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('pan_curves')
    log = run_in_process(PANOPTIC, command_argv(
        PANOPTIC, {'--variants': ['fullres', 'winwin'], '--iters': [2], '--val-every': [1],
                   '--out': [out]},
        ['--seeds', '0', '--num-train', '2', '--num-val', '1', '--work-dir', out / 'work']))
    return out, log


def test_panoptic_mode_trains_and_records_pq_on_whole_images(panoptic_run):
    out, log = panoptic_run
    results = json.load(open(out / 'curves.json'))
    assert sorted(r['variant'] for r in results) == ['fullres', 'winwin']
    for r in results:
        assert r['model'] == 'mask2former-panoptic' and r['task'] == 'context'
        assert [p['iter'] for p in r['points']] == [1, 2]  # validated after each iteration
        for p in r['points']:
            for m in ('PQ', 'PQ things', 'PQ stuff', 'SQ', 'RQ'):
                assert 0.0 <= p[m] <= 100.0  # a number from the metric, in percent
        assert 0 < r['points'][0]['cpu_s'] < r['points'][1]['cpu_s']
    assert '[det-curves]   1: PQ ' in log  # the tool's own per-run summary line
    assert osp.isfile(out / 'winwin_det_panoptic_curves_context.png')


def test_panoptic_run_config_is_the_tiny_mask2former_on_whole_images(tmp_path):
    """The config a run builds: the tiny (Win-Win) Mask2Former panoptic configs, heads sized
    to the cue task's 2 things + 1 stuff, validation on the whole image with the panoptic
    metric, Win-Win windows only in the Win-Win run's training pipeline."""
    import argparse

    from mmwinwin.experiments.winwin_det_curves import build_cfg
    args = argparse.Namespace(model='mask2former-panoptic', iters=10, long_factor=1.6,
                              img_size=(128, 256), crop=96, window=4, batch_size=2, lr=1e-3,
                              light_heads=1, val_every=5)
    for variant, model_type in (('fullres', 'Mask2Former'), ('winwin', 'WinWinMask2Former'),
                                ('winwin_long', 'WinWinMask2Former'),
                                ('winwin_ft', 'WinWinMask2Former'),
                                ('winwin_ft_r100', 'WinWinMask2Former')):
        cfg = build_cfg(variant, 'context', str(tmp_path), str(tmp_path / 'w'), args, 0)
        assert cfg.model.type == model_type
        # winwin_ft*: the recipe's full-image phase, driven by the configs' hook, whole images
        assert cfg.model.get('full_image_phase') == (
            dict(begin_fraction=5 / 6) if variant.startswith('winwin_ft') else None)
        # winwin_ft_r100: the windows' schedule ends at the phase (iteration 8 of 10), which
        # restarts the learning rate at the optimizer's and anneals it to 0
        phase = [s for s in cfg.param_scheduler if s['type'] == 'CosineRestartLR']
        assert phase == ([dict(type='CosineRestartLR', periods=[2], restart_weights=[1.0],
                               eta_min=0.0, by_epoch=False, begin=8, end=10)]
                         if variant == 'winwin_ft_r100' else [])
        assert max(s['end'] for s in cfg.param_scheduler if s not in phase) == (
            8 if phase else cfg.train_cfg['max_iters'])
        assert 'FullImagePhaseHook' in [h['type'] for h in cfg.custom_hooks]
        pack = cfg.train_dataloader['dataset']['pipeline'][-1]
        assert pack.get('pixels', 'image') == 'image'
        head = cfg.model.panoptic_head
        assert (head.num_things_classes, head.num_stuff_classes) == (2, 1)
        assert len(head.loss_cls.class_weight) == 2 + 1 + 1
        assert cfg.val_evaluator['type'] == 'mmwinwin.CocoPanopticMetric'
        val_types = [t['type'] for t in cfg.val_dataloader['dataset']['pipeline']]
        assert 'RandomCrop' not in val_types and 'WinWinWindows' not in val_types
        resize = cfg.val_dataloader['dataset']['pipeline'][1]
        assert resize['type'] == 'Resize' and resize['scale'] == (256, 128)  # (W, H): as is
        train_types = [t['type'] for t in cfg.train_dataloader['dataset']['pipeline']]
        assert ('WinWinWindows' in train_types) == variant.startswith('winwin')
        for w in cfg.train_dataloader['dataset']['pipeline']:
            if w['type'] == 'WinWinWindows':  # given explicitly: the backbone's patch size
                assert w['patch_size'] == cfg.model.backbone.patch_size == 16
        assert cfg.train_cfg['max_iters'] == (16 if variant == 'winwin_long' else 10)
        classes = cfg.train_dataloader['dataset']['metainfo']['classes']
        assert classes == ('red_scene_object', 'blue_scene_object', 'background')
    # winwin_ft_r100_l3: the phase over the last third (iterations 8-11 of 12), restarted
    args.iters = 12
    cfg = build_cfg('winwin_ft_r100_l3', 'context', str(tmp_path), str(tmp_path / 'w'), args, 0)
    assert cfg.model.full_image_phase == dict(begin_fraction=2 / 3)
    assert cfg.param_scheduler[-1] == dict(type='CosineRestartLR', periods=[4],
                                           restart_weights=[1.0], eta_min=0.0, by_epoch=False,
                                           begin=8, end=12)
    assert max(s['end'] for s in cfg.param_scheduler[:-1]) == 8
    # winwin_ft_r100_l3_pairs: the same phase and schedule, the first window over a same-class
    # pair wherever the image has one
    pairs = build_cfg('winwin_ft_r100_l3_pairs', 'context', str(tmp_path), str(tmp_path / 'w'),
                      args, 0)
    assert pairs.model.full_image_phase == cfg.model.full_image_phase
    assert pairs.param_scheduler == cfg.param_scheduler
    windows, = [t for t in pairs.train_dataloader['dataset']['pipeline']
                if t['type'] == 'WinWinWindows']
    plain, = [t for t in cfg.train_dataloader['dataset']['pipeline']
              if t['type'] == 'WinWinWindows']
    assert windows == dict(plain, same_class_pairs=1.0) and 'same_class_pairs' not in plain
    # winwin_ft_r100_l3_twin: the same phase and schedule, its whole-image steps sampling as
    # the fullres run (256 points per mask), its window steps as the Win-Win run (64)
    twin = build_cfg('winwin_ft_r100_l3_twin', 'context', str(tmp_path), str(tmp_path / 'w'),
                     args, 0)
    full = build_cfg('fullres', 'context', str(tmp_path), str(tmp_path / 'w'), args, 0)
    assert twin.model.full_image_phase == dict(cfg.model.full_image_phase,
                                               train_cfg=full.model.train_cfg.to_dict())
    assert twin.model.full_image_phase['train_cfg']['num_points'] == 256
    assert twin.model.train_cfg == cfg.model.train_cfg and cfg.model.train_cfg.num_points == 64
    assert twin.param_scheduler == cfg.param_scheduler
    uniform = build_cfg('winwin', 'context', str(tmp_path), str(tmp_path / 'w'), args, 0)
    paired = build_cfg('winwin_pairs', 'context', str(tmp_path), str(tmp_path / 'w'), args, 0)
    # windows only: the config's recipe replaced by no phase
    assert paired.model.full_image_phase is None and uniform.model.full_image_phase is None
    assert paired.param_scheduler == uniform.param_scheduler
    assert [t for t in paired.train_dataloader['dataset']['pipeline']
            if t['type'] == 'WinWinWindows'] == [dict(plain, same_class_pairs=1.0)]


def test_panoptic_tables_are_computed_from_the_recorded_points(panoptic_run):
    out, _ = panoptic_run
    results = json.load(open(out / 'curves.json'))
    text = open(out / 'curves.md').read()
    for metric in ('PQ', 'PQ things', 'PQ stuff'):
        # the table of this metric: its header names it
        start = text.index(f'; {metric} mean +- std over seeds')
        block = text[start:text.find('Win-Win learning curves (', start)]
        for row in _equal_iteration_rows(results, 'context', metric):
            assert row in block, (row, block)
        start = text.index(f'{metric} at equal training CPU time')
        block = text[start:text.find('at equal training CPU time', start + 30)]
        header, rows = _equal_time_rows(results, 'context', metric)
        assert '| variant | ' + ' | '.join(header) + ' |' in block
        for row in rows:
            assert row in block, (row, block)


def test_stored_mask_rcnn_curves_redraw_from_their_points(tmp_path):
    """The committed Mask R-CNN evidence (written before the panoptic mode, without a
    ``model`` key) still loads: --plot-only redraws its tables from its own points."""
    store = osp.join(REPO, 'docs/images/winwin_det_curves/curves.json')
    shutil.copy(store, tmp_path / 'curves.json')
    run_in_process(PLOT_ONLY, command_argv(PLOT_ONLY, {'--out': [tmp_path]}))
    results = [r for r in json.load(open(store)) if 'partial' not in r]
    text = open(tmp_path / 'curves.md').read()
    for task in ('context', 'local'):
        start = text.index('; bbox AP mean +- std over seeds')
        block = text[start:text.find('Win-Win learning curves (', start)]
        for row in _equal_iteration_rows(results, task, 'bbox AP'):
            assert row in block
        start = text.index('mask AP at equal training CPU time')
        block = text[start:]
        _header, rows = _equal_time_rows(results, task, 'mask AP')
        for row in rows:
            assert row in block
    assert osp.isfile(tmp_path / 'winwin_det_curves_context.png')


def test_mask_rcnn_twin_phase_samples_as_the_fullres_run(tmp_path):
    """Variant winwin_ft_r100_l3_twin on Mask R-CNN: the whole-image steps take the fullres
    run's train_cfg (64 anchors, 1000 proposals, 32 RoIs per image with --light-heads 1), the
    window steps keep the Win-Win run's per-window one (32, 500, 16 per window)."""
    import argparse

    from mmwinwin.experiments.winwin_det_curves import build_cfg
    args = argparse.Namespace(model='mask-rcnn', iters=12, long_factor=2, img_size=(128, 128),
                              crop=96, window=4, batch_size=2, lr=1e-3, light_heads=1,
                              val_every=6)
    twin = build_cfg('winwin_ft_r100_l3_twin', 'local', str(tmp_path), str(tmp_path / 'w'),
                     args, 0)
    full = build_cfg('fullres', 'local', str(tmp_path), str(tmp_path / 'w'), args, 0)
    phase = twin.model.full_image_phase
    assert phase['begin_fraction'] == 2 / 3 and phase['train_cfg'] == full.model.train_cfg
    sampled = (lambda c: (c['rpn']['sampler']['num'], c['rpn_proposal']['max_per_img'],
                          c['rcnn']['sampler']['num']))
    assert sampled(phase['train_cfg']) == (64, 1000, 32)
    assert sampled(twin.model.train_cfg) == (32, 500, 16)
