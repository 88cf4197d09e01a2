"""The README's main job (``python -m mmwinwin.experiments.winwin_demo``): Win-Win with the configs' recipe, then full
resolution for the same wall time, both evaluated on whole images and printed side by side."""
import re

from documented import run_in_process

DEMO = 'python -m mmwinwin.experiments.winwin_demo'

TINY = ['--num-train', '4', '--num-val', '2', '--img-size', '64', '128', '--window', '2',
        '--batch-size', '2', '--threads', '1']


def _rows(out: str) -> dict:
    rows = {}
    for line in out.splitlines():
        m = re.match(r'\s+(Win-Win.*?|full resolution, same wall time)\s+([\d.]+)\s+([\d.]+)\s+'
                     r'([\d.]+)\s+([\d.]+)\s+(\d+)\s*$', line)
        if m:
            rows[m.group(1).strip()] = dict(miou=float(m.group(2)), train_s=float(m.group(5)),
                                            iters=int(m.group(6)))
    return rows


def test_demo_runs_the_recipe_and_an_equal_time_full_resolution_run(tmp_path):
    out = run_in_process(DEMO, ['--iters', '12', '--work-dir', str(tmp_path), *TINY])
    # the recipe of configs/winwin*: windows for 5/6 of the iterations, whole images after
    assert 'iterations 0-9, then whole images for iterations 10-11' in out
    rows = _rows(out)
    assert set(rows) == {'Win-Win + whole-image phase', 'full resolution, same wall time'}, out
    assert rows['Win-Win + whole-image phase']['iters'] == 12
    for r in rows.values():
        assert 0 <= r['miou'] <= 100
    # the full-resolution run is as many iterations as fit in Win-Win's training time at the
    # full-resolution step time the demo measured (printed on the plan line)
    m = re.search(r'same wall time: ([\d.e+-]+) s / ([\d.e+-]+) s per step \((.*?)\) = (\d+) '
                  r'iterations', out)
    assert m, out
    budget_s, step_s, n = float(m.group(1)), float(m.group(2)), int(m.group(4))
    assert abs(budget_s - rows['Win-Win + whole-image phase']['train_s']) <= 0.05 + 1e-3 * budget_s
    assert n == rows['full resolution, same wall time']['iters']
    # n = round(budget / step); both printed to 4 significant digits
    assert abs(n - budget_s / step_s) <= 0.5 + 2e-3 * budget_s / step_s
    assert (tmp_path / 'winwin' / 'iter_12.pth').exists()


def test_demo_windows_only_times_full_resolution_with_a_probe(tmp_path):
    out = run_in_process(DEMO, ['--iters', '4', '--windows-only', '--probe-iters', '4',
                                '--no-baseline', '--work-dir', str(tmp_path), *TINY])
    assert 'whole images' not in out.split('[2/5]')[1].splitlines()[0]
    assert 'median of a 4-iteration probe' in out
    assert set(_rows(out)) == {'Win-Win'}
