"""mmwinwin.experiments.winwin_flow_curves bookkeeping, without training: the run configs
(the recipe's whole-image phase set, RNGStateHook, schedule), the resume (stored runs
skipped, other settings refused) and the EPE criterion (lower is better)."""
import json
from types import SimpleNamespace

import pytest

from mmwinwin.experiments import winwin_flow_curves as wfc


def test_run_configs_carry_the_recipe_the_schedule_and_the_rng_hook():
    full, set_full = wfc.build_cfg('flow', 'fullres', '/data', '/work', 3, 1000, 250)
    ww, set_ww = wfc.build_cfg('flow', 'winwin_ft', '/data', '/work', 3, 1000, 250)
    assert not set_full and full.model.get('full_image_phase') is None
    # the experiment config has windows but no whole-image phase: the tool adds the recipe's
    assert ww.model.full_image_phase == dict(begin_fraction=5 / 6) and ww.model.windows
    for cfg in (full, ww):
        assert cfg.randomness == dict(seed=3)
        assert cfg.train_cfg.max_iters == 1000 and cfg.train_cfg.val_interval == 250
        assert [s['end'] for s in cfg.param_scheduler] == [1000]  # cosine ends with the run
        assert cfg.train_dataloader.dataset.data_root == '/data/train'
        assert cfg.val_dataloader.dataset.data_root == '/data/val'
        assert cfg.val_evaluator.type == 'FlowMetric'
        assert 'RNGStateHook' in [h['type'] for h in cfg.custom_hooks]
        assert cfg.default_hooks.checkpoint.interval == -1
    assert set_ww  # (the flow experiment config lacks it)
    # the config's own schedule when --iters is not given
    assert wfc.build_cfg('flow', 'fullres', '/d', '/w', 0, None, 500)[0].train_cfg.max_iters == 2000


def _args(tmp_path, **kw):
    return SimpleNamespace(**dict(dict(task='flow', seeds=[0, 1], variants=['fullres', 'winwin_ft'],
                                       iters=4, val_every=2, threads=1, num_train=2, num_val=1,
                                       work_dir=str(tmp_path)), **kw))


def test_resume_skips_stored_runs_and_refuses_other_settings(tmp_path, monkeypatch):
    calls = []

    def fake_run_one(task, variant, seed, args, work):
        calls.append((seed, variant))
        epe = {'fullres': 4.0, 'winwin_ft': 3.0}[variant] + seed
        return ([dict(iter=2, cpu_s=1.0, train_s=1.0, EPE=epe + 1),
                 dict(iter=4, cpu_s=2.0, train_s=2.0, EPE=epe)], dict(config=variant))
    monkeypatch.setattr(wfc, 'run_one', fake_run_one)
    store = str(tmp_path / 'curves.json')
    args = _args(tmp_path)
    stored = [dict(wfc.run_key('flow', 'fullres', 0, 4), points=[],
                   settings=wfc.batch_settings(args))]
    results = wfc.run_batch(args, stored, store, 4)
    assert calls == [(0, 'winwin_ft'), (1, 'fullres'), (1, 'winwin_ft')]  # seeds outermost
    on_disk = json.load(open(store))
    assert len(on_disk) == 4 and on_disk == results
    assert on_disk[-1]['settings']['num_train'] == 2 and on_disk[-1]['settings']['config']
    calls.clear()
    wfc.run_batch(args, results, store, 4)
    assert calls == []  # everything stored
    with pytest.raises(ValueError, match='other settings'):
        wfc.run_batch(_args(tmp_path, val_every=1), results, store, 4)
    with pytest.raises(ValueError, match='other settings'):
        wfc.run_batch(args, results, store, 8)


def test_report_judges_epe_lower_is_better(tmp_path):
    def run(variant, seed, epes, secs):
        return dict(task='flow', variant=variant, seed=seed, iters=4,
                    settings=dict(val_every=2, num_val=1, threads=1),
                    points=[dict(iter=2 * (i + 1), EPE=e, cpu_s=s)
                            for i, (e, s) in enumerate(zip(epes, secs))])
    # the recipe: lower EPE sooner, in 0.4 of the time -> the criterion holds
    results = [run('fullres', 0, [6.0, 4.0], [2, 10]), run('winwin_ft', 0, [5.0, 3.6], [2, 4])]
    text = wfc.report(results, str(tmp_path))
    row = [ln for ln in text.splitlines() if ln.startswith('| flow |')][0]
    assert row.endswith('| 0.40 | holds |') and '1.11 (1.11)' in row  # 4.0 / 3.6
    assert (tmp_path / 'curves_flow.png').is_file()
    assert "- Win-Win 2x4 + whole images from 5/6 (depth's recipe), seed 0: 3.600 (4 s)" in text
    # higher EPE than full resolution at the end: fails
    results[1]['points'][-1]['EPE'] = 4.8
    row = [ln for ln in wfc.report(results, str(tmp_path)).splitlines()
           if ln.startswith('| flow |')][0]
    assert row.endswith('fails |') and '0.83' in row


def test_depth_configs_carry_the_recipe_and_read_the_generated_layout():
    ww, set_ww = wfc.build_cfg('depth', 'winwin_ft', '/nyu', '/work', 1, 600, 200)
    assert not set_ww and ww.model.full_image_phase == dict(begin_fraction=5 / 6)
    assert ww.train_dataloader.dataset.data_root == '/nyu' == ww.val_dataloader.dataset.data_root
    assert [s['end'] for s in ww.param_scheduler] == [600]
    assert wfc.TASKS['depth']['metric_keys']['RMSE'] == 'rmse'
    # the phase with its own learning rate: the recipe's config, its schedule ended at the
    # phase (iteration 500 of 600), a cosine restart at the optimizer's lr after it
    for task in ('depth', 'flow'):
        r, _ = wfc.build_cfg(task, 'winwin_ft_r100', '/d', '/w', 1, 600, 200)
        assert wfc.config_of(task, 'winwin_ft_r100') == wfc.TASKS[task]['configs']['winwin_ft']
        assert r.model.full_image_phase == dict(begin_fraction=5 / 6)
        *windows, phase = [dict(s) for s in r.param_scheduler]
        assert [s['end'] for s in windows] == [500]
        assert phase == dict(type='CosineRestartLR', periods=[100], restart_weights=[1.0],
                             eta_min=0.0, by_epoch=False, begin=500, end=600)
        # the longer phase: whole images from 2/3 (iteration 400 of 600), restarted there
        r, set_phase = wfc.build_cfg(task, 'winwin_ft_r100_l3', '/d', '/w', 1, 600, 200)
        assert set_phase and r.model.full_image_phase == dict(begin_fraction=2 / 3)
        *windows, phase = [dict(s) for s in r.param_scheduler]
        assert [s['end'] for s in windows] == [400]
        assert phase == dict(type='CosineRestartLR', periods=[200], restart_weights=[1.0],
                             eta_min=0.0, by_epoch=False, begin=400, end=600)
