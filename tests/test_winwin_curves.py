"""mmwinwin.experiments.winwin_curves bookkeeping: the side-by-side step-cost table (the full-image phase's
cost over a run) and the summary over seeds, against arithmetic written in the test."""
from types import SimpleNamespace

import numpy as np

from mmwinwin.experiments.curves import summarise
from mmwinwin.experiments.winwin_curves import step_cost_table


def test_step_cost_table_mixes_the_phases_over_the_run():
    costs = {'winwin_ft_b2000@windows': dict(cpu_ms=40.0, load_ms=10.0, total_ms=50.0, wall_ms=1),
             'winwin_ft_b2000@whole': dict(cpu_ms=100.0, load_ms=10.0, total_ms=110.0, wall_ms=1),
             'fullres': dict(cpu_ms=100.0, load_ms=10.0, total_ms=110.0, wall_ms=1)}
    args = SimpleNamespace(img_size=(192, 384), batch_size=4, threads=1, step_cost_steps=20,
                           full_phase_begin=2000, iters=2400)
    table = step_cost_table(costs, args)
    # 2000 window steps and 400 whole-image steps of 2400
    step = (2000 * 40 + 400 * 100) / 2400          # 50.0 ms: 0.50 of 100
    total = (2000 * 50 + 400 * 110) / 2400         # 60.0 ms: 0.55 of 110
    assert f'= {step:.1f} CPU ms per step on average, {step / 100:.2f} of full' in table
    assert f'= {total:.1f} CPU ms per step on average, {total / 110:.2f} of full' in table
    assert '| winwin_ft_b2000@windows | 40.0 | 10.0 | 50.0 | 1.0 | 0.40 | 0.45 |' in table


def test_summary_over_seeds():
    def run(seed, values, secs):
        return dict(task='long', variant='winwin', seed=seed,
                    points=[dict(iter=200 * (i + 1), mIoU=v, cpu_s=s)
                            for i, (v, s) in enumerate(zip(values, secs))])
    s = summarise([run(0, [10.0, 30.0, 50.0], [1, 2, 3]), run(1, [20.0, 40.0], [3, 4])])
    got = s[('long', 'winwin')]
    assert got['iters'] == [200, 400]  # up to the shortest run
    assert got['seeds'] == 2
    np.testing.assert_allclose(got['mean'], [15.0, 35.0])
    np.testing.assert_allclose(got['std'], [5.0, 5.0])  # population std of two values 10 apart
    np.testing.assert_allclose(got['cpu_s'], [2.0, 3.0])


def test_side_by_side_batch_stores_every_run_with_its_settings_and_refuses_a_mixed_resume(
        tmp_path):
    """``--jobs 2``: two runs in their own processes, both stored with the batch's settings;
    a resume with other settings into the same store is refused, naming the fix."""
    import json

    import pytest

    from mmwinwin.experiments.winwin_curves import main
    common = ['--tasks', 'local', '--seeds', '0', '--iters', '2', '--val-every', '2',
              '--img-size', '64', '128', '--window', '2', '--crop', '32', '--num-train', '2',
              '--num-val', '1', '--batch-size', '2', '--out', str(tmp_path / 'out'),
              '--work-dir', str(tmp_path / 'work')]
    main(common + ['--variants', 'fullres', 'random_tokens', '--jobs', '2'])
    runs = json.loads((tmp_path / 'out' / 'curves.json').read_text())
    assert sorted(r['variant'] for r in runs) == ['fullres', 'random_tokens']
    for r in runs:
        assert r['jobs'] == 2 and r['val_every'] == 2 and r['seed'] == 0
        assert [p['iter'] for p in r['points']] == [2] and 0 <= r['points'][0]['mIoU'] <= 100
    with pytest.raises(ValueError, match='other settings.*Give another --out'):
        main(common + ['--variants', 'winwin', '--lr', '1e-3'])


def test_patch_size_is_a_stored_setting_of_the_batch(tmp_path):
    """``--patch-size 8``: the runs train a backbone of patch 8 (windows counted in its
    tokens), the store records it, and a resume at the config's patch 16 is refused."""
    import json

    import pytest

    from mmwinwin.experiments.winwin_curves import main
    common = ['--tasks', 'local', '--seeds', '0', '--iters', '2', '--val-every', '2',
              '--img-size', '64', '128', '--window', '4', '--crop', '32', '--num-train', '2',
              '--num-val', '1', '--batch-size', '2', '--out', str(tmp_path / 'out'),
              '--work-dir', str(tmp_path / 'work')]
    main(common + ['--variants', 'winwin_gridctx_max_r100_l3', '--patch-size', '8'])
    (run,) = json.loads((tmp_path / 'out' / 'curves.json').read_text())
    assert run['patch_size'] == 8 and run['window'] == 4
    assert [p['iter'] for p in run['points']] == [2]
    with pytest.raises(ValueError, match='other settings.*patch_size'):
        main(common + ['--variants', 'fullres'])
