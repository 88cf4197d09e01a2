"""tools/benchmark_winwin_det.py --smoke: the detection cost benchmark runs end to end on the
tiny Mask R-CNN and its Win-Win twin (real configs, real data preprocessor, real optimizer
step), and its table follows from its own measurements."""
import importlib.util
import json
import os.path as osp

import pytest

from conftest import REPO, run_tool

TOOL = osp.join(REPO, 'tools', 'benchmark_winwin_det.py')


def _tool():
    spec = importlib.util.spec_from_file_location('benchmark_winwin_det', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_run_measures_both_modes(tmp_path):
    out_json = tmp_path / 'det.json'
    out = run_tool(['tools/benchmark_winwin_det.py', '--smoke', '--out', str(out_json)],
                   env=dict(OMP_NUM_THREADS='1'))
    res = json.loads(out_json.read_text())
    assert res['winwin_config'].endswith(
        'winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py')
    full, win = res['results']['fullres'], res['results']['winwin:']
    assert full['tokens'] == 8 * 8 and full['windows'] == '8x8'  # 128 px, patch 16
    # the Win-Win step ran on the windows the twin's WinWinWindows drew: 2 of 4x4 tokens
    assert win['windows'] == '2x4x4' and win['tokens'] == 2 * 4 * 4
    for r in (full, win):
        assert len(r['times_s']) == 1 and 0 < r['min_s'] <= r['median_s']
        assert r['peak_growth_bytes'] > 0
    speed = full['median_s'] / win['median_s']
    cpu = full['cpu_median_s'] / win['cpu_median_s']
    mem = full['peak_growth_bytes'] / win['peak_growth_bytes']
    row = [ln for ln in res['table'].splitlines() if ln.startswith('| Win-Win 2x4x4 |')]
    assert len(row) == 1 and f'| {speed:.2f}x | {cpu:.2f}x | {mem:.2f}x |' in row[0]
    assert res['table'] in out


def test_missing_twin_and_bad_arguments_are_clear_errors(tmp_path):
    tool = _tool()
    cfg = tmp_path / 'mask-rcnn_x.py'
    cfg.write_text('')
    with pytest.raises(FileNotFoundError, match='winwin-\\*_mask-rcnn_x.py.*--winwin-config'):
        tool.parse_args(['--config', str(cfg)])
    (tmp_path / 'winwin-2x9_mask-rcnn_x.py').write_text('')
    assert tool.parse_args(['--config', str(cfg)]).winwin_config.endswith(
        'winwin-2x9_mask-rcnn_x.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['--config', str(cfg), '--repeats', '0'])
