"""tools/analysis_tools/benchmark_winwin_det.py --smoke: the detection cost benchmark runs end to end on the
tiny Mask R-CNN and its Win-Win twin (real configs, real data preprocessor, real optimizer
step), and its table follows from its own measurements."""
import json
import os.path as osp
import runpy
from types import SimpleNamespace

import pytest

from conftest import REPO, run_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_winwin_det.py')


def _tool():
    """The tool's functions (it is a script, not a module of the package)."""
    return SimpleNamespace(**runpy.run_path(TOOL))


def test_smoke_run_measures_both_modes(tmp_path):
    out_json = tmp_path / 'det.json'
    # the documented `--smoke` command, and `--threads 2` at its tiny size (--smoke, 1 thread)
    out = run_tool(['tools/analysis_tools/benchmark_winwin_det.py', '--smoke', '--out',
                    str(out_json)], env=dict(OMP_NUM_THREADS='1'))
    res = json.loads(out_json.read_text())
    assert res['winwin_config'].endswith(
        'winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py')
    full, win = res['results']['fullres'], res['results']['winwin:']
    assert full['tokens'] == 8 * 8 and full['windows'] == '8x8'  # 128 px, patch 16
    # the Win-Win step ran on the windows the twin's WinWinWindows drew: 2 of 4x4 tokens
    assert win['windows'] == '2x4x4' and win['tokens'] == 2 * 4 * 4
    for r in (full, win):
        assert len(r['times_s']) == 1 and 0 < r['min_s'] <= r['median_s']
        # recorded, not asserted positive: a tiny step's growth is allocator noise (seen 0)
        assert isinstance(r['peak_growth_bytes'], int) and r['peak_rss_bytes'] > 0
    speed = full['median_s'] / win['median_s']
    cpu = full['cpu_median_s'] / win['cpu_median_s']
    mem = full['peak_growth_bytes'] / max(1, win['peak_growth_bytes'])  # the tool's rule
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


def test_profile_attributes_backward_to_its_forward_component():
    """Every op's time lands in one component (nothing lost, nothing counted twice), and a
    component's backward is the time of the autograd nodes created by its forward ops:
    computed here from the nodes' total times, the tool sums self times."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    tool = _tool()
    torch.manual_seed(0)
    big, small = torch.nn.Linear(256, 256), torch.nn.Linear(8, 8)
    x, y = torch.randn(512, 256), torch.randn(4, 8)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function(tool.PROFILE_PREFIX + 'big'):
            a = big(x).relu().sum()
        with record_function(tool.PROFILE_PREFIX + 'small'):
            b = small(y).sum()
        (a + b).backward()
    events = list(prof.events())
    comps = tool.attribute_events(events)

    def under(ev, name):
        while ev is not None:
            if ev.name == name:
                return True
            ev = ev.cpu_parent
        return False

    roots = [e for e in events if e.cpu_parent is None]
    total_ms = sum(e.cpu_time_total for e in roots) / 1e3
    assert abs(sum(v['fwd'] + v['bwd'] for v in comps.values()) - total_ms) < 1e-6 * total_ms
    for name in ('big', 'small'):
        label = tool.PROFILE_PREFIX + name
        seqs = {e.sequence_nr for e in events if e.sequence_nr >= 0 and under(e, label)
                and not e.name.startswith('autograd::')}
        nodes = [e for e in roots if e.name.startswith('autograd::engine::evaluate_function')
                 and e.sequence_nr in seqs]
        assert nodes and any('AddmmBackward' in e.name for e in nodes)
        bwd_ms = sum(e.cpu_time_total for e in nodes) / 1e3
        assert abs(comps[name]['bwd'] - bwd_ms) < 1e-6 * max(bwd_ms, 1e-3)
        fwd_ms = sum(e.cpu_time_total for e in roots if e.name == label) / 1e3
        assert abs(comps[name]['fwd'] - fwd_ms) < 1e-6 * fwd_ms


def test_smoke_profile_names_every_component(tmp_path):
    out_json = tmp_path / 'prof.json'
    out = run_tool(['tools/analysis_tools/benchmark_winwin_det.py', '--smoke', '--profile', '--out',
                    str(out_json)], env=dict(OMP_NUM_THREADS='1'))
    res = json.loads(out_json.read_text())
    full, win = res['results']['fullres']['components'], res['results']['winwin:']['components']
    for comps in (full, win):
        for name in ('backbone', 'neck (SimpleFPN)', 'RPN head convs', 'box head (4 conv + fc)',
                     'mask head (4 conv + deconv)', 'box RoIAlign'):
            assert comps[name]['fwd'] > 0 and comps[name]['bwd'] > 0, name
        assert comps['optimizer step (AdamW + zero_grad)']['fwd'] > 0
        assert comps['data preprocessor']['fwd'] > 0
    assert 'window targets (crop per window)' in win
    assert 'window targets (crop per window)' not in full
    row = [ln for ln in res['table'].splitlines() if ln.startswith('| backbone |')][0]
    b, tot = full['backbone'], sum(v['fwd'] + v['bwd'] for v in full.values())
    assert f"| {b['fwd']:.0f} | {b['bwd']:.0f} | {100 * (b['fwd'] + b['bwd']) / tot:.1f} % |" \
        in row
    assert res['table'] in out
