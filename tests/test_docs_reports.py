"""The generated tables of the docs agree with the committed data they come from
(``python -m mmwinwin.experiments.report --check``), and the criterion's arithmetic holds on
hand-made curves against values worked out by hand here."""
import json
import shutil

import numpy as np
import pytest

from mmwinwin.experiments import report
from mmwinwin.experiments.comparison import (criterion_rows, equal_time_check, final_rows,
                                             mean_curve)


def test_every_generated_table_agrees_with_its_data():
    cache, bad = {}, []
    for path in report.documents():
        bad += [f'{path}: {name}' for name in report.update(path, check=True, cache=cache)]
    assert not bad, ('generated tables disagree with their data; run `python -m '
                     'mmwinwin.experiments.report`:\n' + '\n'.join(bad))


def test_the_docs_hold_the_same_batch_tables():
    text = open(report.repo_path('docs', 'winwin.md')).read()
    for name in ('winwin-same-batch-criterion', 'winwin-same-batch-final-long',
                 'winwin-same-batch-final-local'):
        assert f'<!-- report: {name} -->' in text, name
    alt = open(report.repo_path('docs', 'alternatives.md')).read()
    assert '<!-- report: winwin-same-batch-peers-long -->' in alt


def test_the_suite_table_covers_every_task_of_every_batch():
    """README's suite table has a row per task of every committed same-batch store (each
    named with its image size), and every recipe candidate's row is in docs/winwin.md's
    suite table, or (a candidate measured in a one-session store of its own, such as the
    progressive windows) in that store's own criterion table in docs/winwin.md."""
    text = report.render('winwin-suite-criterion')
    rows = report.render('winwin-suite-criterion-recipes')
    winwin_md = open(report.repo_path('docs', 'winwin.md')).read()
    batches = [(prefix, report._load(p)) for prefix, (p, _) in report.BATCHES.items()
               if report._exists(p)]
    assert batches
    for prefix, res in batches:
        own = report.render(f'{prefix}-criterion-recipes')
        own_in_docs = f'<!-- report: {prefix}-criterion-recipes -->' in winwin_md
        size = report._size(res)  # '192x384', or '256x512, patch 8' for a store at patch 8
        for task in {r['task'] for r in res}:
            assert f'| {task} ({size}) |' in text, (task, size)
            for recipe in report._recipes(res):
                n = sum(1 for r in res if r['task'] == task and
                        r['variant'].split('_b')[0] == recipe)
                if n and any(r['task'] == task and r['variant'] == 'fullres' for r in res):
                    assert f'| {task} ({size}) | {report._label(recipe)} |' in rows or (
                        own_in_docs and f'| {task} | {report._label(recipe)} |' in own), \
                        (prefix, task, recipe)
    assert '<!-- report: winwin-suite-criterion -->' in open(report.repo_path('README.md')).read()


def test_a_changed_table_is_found_and_rewritten(tmp_path):
    name = next(iter(report.blocks()))
    doc = tmp_path / 'page.md'
    good = report.render(name)
    doc.write_text(f'intro\n<!-- report: {name} -->\n{good.replace("1", "7", 1)}\n'
                   f'<!-- /report: {name} -->\nafter\n')
    assert report.update(str(doc), check=True) == [name]
    assert report.update(str(doc)) == [name]  # rewritten from the data
    assert report.update(str(doc), check=True) == []
    assert doc.read_text() == f'intro\n<!-- report: {name} -->\n{good}\n<!-- /report: {name} -->\nafter\n'


def test_unknown_table_names_the_known_ones(tmp_path):
    doc = tmp_path / 'page.md'
    doc.write_text('<!-- report: no-such-table -->\nx\n<!-- /report: no-such-table -->\n')
    with pytest.raises(KeyError, match='Unknown generated table'):
        report.update(str(doc), check=True)


def _run(task, variant, seed, times, values):
    return dict(task=task, variant=variant, seed=seed,
                points=[dict(iter=100 * (i + 1), cpu_s=t, mIoU=v)
                        for i, (t, v) in enumerate(zip(times, values))])


def test_equal_time_check_by_hand():
    # recipe: 10..50 s; baseline: 20..100 s (twice as slow per iteration)
    recipe = dict(time=np.array([10., 20., 30., 40., 50.]), mean=np.array([5., 20., 30., 35., 40.]))
    base = dict(time=np.array([20., 40., 60., 80., 100.]), mean=np.array([10., 25., 38., 45., 50.]))
    # compared times: >= 10 % of 50 s, within the baseline's 20..100 s and <= 50 s:
    # 20, 30, 40, 50; margins 20-10, 30-17.5, 35-25, 40-31.5 -> all >= 0, the smallest 8.5
    c = equal_time_check(recipe, base)
    assert c['holds'] and c['compared'] == 4
    assert c['worst'] == pytest.approx(8.5) and c['at'] == 50
    recipe['mean'][2] = 15.0  # at 30 s the baseline is at 17.5: 2.5 below
    c = equal_time_check(recipe, base)
    assert not c['holds'] and c['worst'] == pytest.approx(-2.5) and c['at'] == 30
    # lower is better (RMSE): the signs flip
    c = equal_time_check(dict(time=recipe['time'], mean=-recipe['mean']),
                         dict(time=base['time'], mean=-base['mean']), lower_is_better=True)
    assert not c['holds'] and c['worst'] == pytest.approx(-2.5)


def test_final_rows_and_the_end_criterion_by_hand():
    results = [_run('t', 'fullres', 0, [50, 100], [40, 80]), _run('t', 'fullres', 1, [50, 100], [30, 60]),
               _run('t', 'winwin_ft_b2', 0, [20, 45], [50, 76]),
               _run('t', 'winwin_ft_b2', 1, [20, 45], [40, 48])]
    rows = final_rows(results, 't', ['winwin_ft'])
    r = rows[0]
    assert r['mean'] == pytest.approx(62.0) and r['ratio'] == pytest.approx(62 / 70)
    assert r['per_seed_ratio'] == pytest.approx([76 / 80, 48 / 60])
    assert r['time_ratio'] == pytest.approx(0.45)
    crit = criterion_rows(results, ['t'])[0]
    assert not crit['end_holds']  # 0.886 < 0.9 although 0.45 <= 0.5
    c = mean_curve(results[2:], 'mIoU')
    assert list(c['mean']) == [45.0, 62.0] and list(c['time']) == [20.0, 45.0]


#: the settings every run of a ``winwin_curves`` store of one invocation shares
STORE_KEYS = ('iters', 'img_size', 'window', 'batch_size', 'lr', 'val_every', 'num_train',
              'num_val', 'config', 'threads', 'jobs', 'patch_size')


def _one_setting(data: list, keys: tuple, variant=lambda v: v) -> dict:
    """Assert that the runs of a ``winwin_curves`` store share the settings ``keys``, the same
    >= 3 seeds for every task and variant and one validation schedule; return the seeds per
    ``(task, variant(name))``."""
    assert len({tuple(json.dumps(r[k]) for k in keys) for r in data}) == 1
    seeds = {}
    for r in data:
        seeds.setdefault((r['task'], variant(r['variant'])), set()).add(r['seed'])
    assert len({frozenset(s) for s in seeds.values()}) == 1 and len(next(iter(seeds.values()))) >= 3
    assert len({tuple(p['iter'] for p in r['points']) for r in data}) == 1
    return seeds


def test_the_same_batch_data_is_one_batch():
    """Every run of the committed same-batch data has the same settings, seeds per variant
    and validation schedule (one invocation, resumed at most)."""
    data = json.load(open(report.repo_path(*report.SAME_BATCH)))
    _one_setting(data, ('iters', 'img_size', 'window', 'batch_size', 'lr', 'val_every',
                        'num_train', 'num_val', 'config', 'full_phase_begin'))


def test_report_regenerates_into_a_copy(tmp_path, monkeypatch):
    """The one command rewrites a stale copy of the docs from the data alone."""
    src = report.repo_path('docs', 'winwin.md')
    copy = tmp_path / 'winwin.md'
    shutil.copy(src, copy)
    text = copy.read_text()
    name = 'winwin-same-batch-criterion'
    start = text.index(f'<!-- report: {name} -->')
    end = text.index(f'<!-- /report: {name} -->')
    body = text[start:end]
    stale = body.replace('| long |', '| LONG |', 1)
    assert stale != body
    copy.write_text(text[:start] + stale + text[end:])
    assert report.update(str(copy), check=True) == [name]
    report.update(str(copy))
    assert copy.read_text() == text


def test_the_detection_session_stores_are_one_invocation_each():
    """Each store behind the suite's detection rows holds full resolution, (r), (v) and the
    other detection variants measured there, of one setting, the same >= 3 seeds each,
    validated at the same iterations (``winwin_det_curves`` run once per store, resumed in the
    same session), and the suite names the configs' recipe of every detection task: (v) for
    Mask R-CNN, (x) for panoptic Mask2Former."""
    assert report.DETECTION_SESSION_STORES
    keys = ('model', 'task', 'iters', 'img_size', 'window', 'crop', 'lr', 'batch_size',
            'light_heads')
    for parts, metric, _, prefix, shipped in report.DETECTION_SESSION_STORES:
        assert shipped == (report.PHASE_TWIN_PART if prefix == 'panoptic '
                           else report.PHASE_TWIN), parts
        data = json.load(open(report.repo_path(*parts)))
        assert len({tuple(json.dumps(r[k]) for k in keys) for r in data}) == 1, parts
        seeds = {}
        for r in data:
            seeds.setdefault(r['variant'], set()).add(r['seed'])
        assert {'fullres', report.RECIPE, report.PHASE_TWIN} <= set(seeds), parts
        assert shipped in seeds and set(seeds) <= set(report.DETECTION_SESSION), parts
        assert len({frozenset(s) for s in seeds.values()}) == 1 and len(seeds['fullres']) >= 3
        assert len({tuple(p['iter'] for p in r['points']) for r in data}) == 1, parts
        assert all(metric in p for r in data for p in r['points'])


@pytest.mark.parametrize('parts', [report.PROGRESSIVE_SESSION, report.PROGRESSIVE_LONG3_SESSION,
                                   report.PROGRESSIVE_LARGE_SESSION])
def test_the_progressive_window_stores_are_one_setting_each(parts):
    """Each store of the windows that change size over training holds full resolution, (r),
    (y) and (z) of one setting, the same >= 3 seeds for every task and variant, validated at
    the same iterations (``winwin_curves`` run once per store, resumed with (z))."""
    data = json.load(open(report.repo_path(*parts)))
    seeds = _one_setting(data, STORE_KEYS[:-1], variant=lambda v: v.split('_b')[0])
    assert {v for _, v in seeds} == {'fullres', report.RECIPE, 'winwin_grow_r100_l3',
                                     'winwin_shrink_r100_l3'}


def test_the_patch8_store_is_one_setting_at_patch_8():
    """The patch-8 store holds full resolution and (r) (and (A)-(D)) of every task, all of one
    setting (patch 8, windows of 12x12 tokens: the same 96x96-pixel windows as the 6x6 ones at
    patch 16), the same >= 3 seeds for every task and variant, validated at the same
    iterations; its tables name the patch, and its step costs were measured at the same patch
    and windows."""
    data = json.load(open(report.repo_path(*report.PATCH8_SESSION)))
    seeds = _one_setting(data, STORE_KEYS)
    assert data[0]['patch_size'] == 8 and data[0]['window'] == 12
    assert {'fullres', report.RECIPE} <= {v for _, v in seeds} <= {
        'fullres', report.RECIPE, 'winwin_gridctx_max_r100_l3', 'winwin_ft_h50_r100_l23',
        'winwin_ft_r200_l3', 'winwin_gridctx_max_r200_l3', 'winwin_ft_s50_s100_r100_l23',
        'winwin_ft_s50_s100_r100_l56'}
    for task in {t for t, _ in seeds}:  # every task compares the recipe with full resolution
        assert {(task, 'fullres'), (task, report.RECIPE)} <= set(seeds)
    assert report._size(data) == '192x384, patch 8'
    assert 'images, patch 8, windows of 12x12' in report.render('winwin-patch8-setting')
    costs = json.load(open(report.repo_path(*report.PATCH8_STEP_COSTS)))['_settings']
    assert (costs['patch_size'], costs['window'], costs['img_size']) == (8, 12, [192, 384])


def test_the_large_patch8_store_is_one_setting_of_the_larger_image():
    """The 256x512 patch-8 store: full resolution, (r) and (E) on `long`, one setting (patch 8,
    windows of 16x16 tokens: the 128x128-pixel windows of the 256x512 store at patch 16, 1600
    iterations as there), the same >= 3 seeds, validated at the same iterations; its suite rows
    name the size and the patch."""
    data = json.load(open(report.repo_path(*report.PATCH8_LARGE_SESSION)))
    seeds = _one_setting(data, STORE_KEYS)
    r = data[0]
    assert (r['patch_size'], r['window'], r['img_size'], r['iters']) == (8, 16, [256, 512], 1600)
    large = json.load(open(report.repo_path(*report.LARGE_BATCH)))[0]
    assert r['window'] * r['patch_size'] == large['window'] * 16 and r['iters'] == large['iters']
    assert set(seeds) == {('long', 'fullres'), ('long', report.RECIPE),
                          ('long', 'winwin_ft_s50_s100_r100_l23'),
                          ('long', 'winwin_ft_s50_s100_r100_l56')}
    assert report._size(data) == '256x512, patch 8'
    assert 'long (256x512, patch 8)' in report.render('winwin-suite-criterion')


def test_cue_rows_by_hand():
    """When each run first reaches the midpoint of full resolution's rise: full resolution
    20 -> 80 (midpoint 50) first at iteration 300; the recipe (phase from 400) at 50 by 600,
    200 steps into its phase, earlier in CPU time; a recipe that stays below: never."""
    from mmwinwin.experiments.comparison import cue_rows, cue_table

    def run(variant, seed, values, cpu):
        return dict(task='long', variant=variant, seed=seed, iters=600,
                    points=[dict(iter=i, cpu_s=c, mIoU=v)
                            for i, v, c in zip((200, 400, 600), values, cpu)])
    results = [run('fullres', 0, (20, 40, 80), (30, 60, 90)),
               run('fullres', 1, (20, 60, 80), (30, 60, 90)),
               run('rec', 0, (10, 30, 55), (10, 20, 50)),
               run('rec', 1, (10, 30, 45), (10, 20, 50))]
    rows = cue_rows(results, 'long', 'rec', lambda iters: 400)
    assert [(r['level'], r['base']['iter'], r['before'], r['recipe'] and r['recipe']['iter'])
            for r in rows] == [(50, 600, 30, 600), (50, 400, 30, None)]
    table = cue_table(results, ['long'], 'rec', lambda iters: 400).split('\n')
    assert table[2] == ('| long | 0 | 20.0 -> 80.0 (50.0) | it 600, 90 s | 30.0 | '
                        'it 600 (+200), 50 s | recipe |')
    assert table[3] == ('| long | 1 | 20.0 -> 80.0 (50.0) | it 400, 60 s | 30.0 | '
                        'never (end 45.0) | full resolution |')
