"""tools/analysis_tools/benchmark_device.py --smoke: the GPU benchmark's code paths at tiny sizes on CPU,
with mmcv / mmseg / mmdet / mmengine blocked (the GPU machine has torch only)."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, WITHOUT_OPENMMLAB

BLOCKED_RUN = WITHOUT_OPENMMLAB + '''
import runpy, sys
sys.argv = ['tools/analysis_tools/benchmark_device.py'] + sys.argv[1:]
runpy.run_path('tools/analysis_tools/benchmark_device.py', run_name='__main__')
print('loaded:', sorted(m for m in sys.modules if m.split('.')[0] in
                        ('mmseg', 'mmdet', 'mmcv', 'mmengine')))
'''


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp('device')
    proc = subprocess.run([sys.executable, '-c', BLOCKED_RUN, str(out), '--smoke',
                           '--threads', '1'], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'loaded: []' in proc.stdout
    return out, json.loads((out / 'results.json').read_text()), (out / 'results.md').read_text()


def test_environment_and_kernels_recorded(smoke):
    _, res, _ = smoke
    env = res['environment']
    import torch
    assert env['torch'] == torch.__version__
    assert env['dtype'] == 'bf16' and env['autocast'] is True and env['smoke'] is True
    assert env['device'] == 'cpu' and env['repeats'] == 1
    assert set(res['sdpa_available']) == {'flash_attention', 'cudnn_attention',
                                          'efficient_attention', 'math'}
    assert res['sdpa_available']['math'] == 'ok'


def test_winwin_rows(smoke):
    _, res, _ = smoke
    rows = res['winwin']
    assert [(r['size'], r['windows']) for r in rows] == [('96x64', '2x2x2'), ('128x96', '2x3x3')]
    C, L, mlp = 32, 4, 4
    for r, (h, w) in zip(rows, [(64, 96), (96, 128)]):
        n = (h // 16) * (w // 16)
        assert r['tokens_full'] == n
        assert r['tokens_winwin'] == 2 * int(r['windows'].split('x')[1]) ** 2
        for mode in ('winwin', 'fullres'):
            assert r[mode]['ms'] > 0 and r[mode]['ms_min'] <= r[mode]['ms']
        assert r['time_ratio_full_over_winwin'] == pytest.approx(
            r['fullres']['ms'] / r['winwin']['ms'])
        # the forward's MACs, written from the shapes: patch embedding + per block qkv,
        # attention (q k^T and attn v), projection, MLP
        macs = n * C * 3 * 256 + L * (n * C * 3 * C + 2 * n * n * C + n * C * C
                                      + 2 * n * C * mlp * C)
        assert r['forward']['gmacs'] * 1e9 == pytest.approx(macs)
        assert r['forward']['tflops'] == pytest.approx(
            2 * macs / (r['forward']['ms'] * 1e-3) / 1e12)
        assert r['sdpa_kernels'] == {'flash (CPU)': L}


def test_expedite_and_flow_rows(smoke):
    _, res, _ = smoke
    rows = res['expedite']
    assert [(r['batch'], r['setting']) for r in rows] == [
        (b, s) for b in (1, 2) for s in ('clustering off', 'alpha=3, 4x4', 'alpha=2, 4x4',
                                         'alpha=1, 3x3')]
    for r in rows:
        assert r['images_per_s'] == pytest.approx(r['batch'] / (r['ms'] * 1e-3))
        if r['setting'] == 'clustering off':
            assert r['mac_ratio'] == 1.0 and 'cluster_recon_ms' not in r
        else:
            assert 0 < r['mac_ratio'] < 1 and 0 < r['cluster_recon_share']
    # earlier clustering (smaller alpha) leaves fewer MACs
    ratios = [r['mac_ratio'] for r in rows[1:3]]
    assert ratios[0] > ratios[1]
    flow = res['flow']
    assert flow[0]['what'] == 'one pass' and flow[1]['what'].startswith('tiled 96x64')
    assert flow[1]['slowdown_vs_one_pass'] == pytest.approx(flow[1]['ms'] / flow[0]['ms'])


def test_markdown_has_every_section(smoke):
    out, res, md = smoke
    for title in ('Win-Win vs full resolution', 'Expedite, Segmenter-shaped', 'Flow, one pass'):
        assert title in md
    assert md.count('| 32x4x2 |') == 2
    assert md.count('| alpha=') == 6
    assert f"torch {res['environment']['torch']}" in md


def test_shell_script_refuses_without_out_dir():
    proc = subprocess.run(['bash', 'tools/analysis_tools/benchmark_device.sh'], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and 'usage' in proc.stderr


def test_shell_script_writes_results(tmp_path):
    out = tmp_path / 'sh'
    proc = subprocess.run(['bash', 'tools/analysis_tools/benchmark_device.sh', str(out), '--smoke', '--parts',
                           'flow', '--threads', '1'], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / 'results.json').read_text())
    assert [r['what'] for r in res['flow']][0] == 'one pass' and 'winwin' not in res
    assert (out / 'results.md').read_text() in (out / 'log.txt').read_text()
