"""The pure-PyTorch core (mmwinwin.layers) imports and runs with torch alone, so it can be
benchmarked on a GPU machine that has no mmcv ops and reused outside OpenMMLab."""
import subprocess
import sys

from conftest import REPO, WITHOUT_OPENMMLAB

BLOCKER = WITHOUT_OPENMMLAB + '''
import sys
import torch
import mmwinwin.layers as layers
for name in layers.__all__:
    getattr(layers, name)
import mmwinwin.layers.flow.croco, mmwinwin.layers.flow.croco_checkpoint
import mmwinwin.layers.flow.ops, mmwinwin.layers.flow.tiling, mmwinwin.layers.winwin.pair_windows
import mmwinwin.utils.benchmark, mmwinwin.utils.benchmark_models
model = layers.RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=2, num_heads=2))
print(tuple(model(torch.randn(1, 3, 40, 24))[0].shape))
print(sorted(m for m in sys.modules if m.split('.')[0] in ('mmseg', 'mmdet', 'mmcv', 'mmengine')))
'''


def test_core_layers_need_only_torch():
    proc = subprocess.run([sys.executable, '-c', BLOCKER], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == '(1, 32, 3, 2)'
    assert lines[1] == '[]'
