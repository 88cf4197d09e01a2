"""tools/analysis_tools/get_flops.py: MACs of a config's test-mode forward, checked against
a count written independently (module hooks on every linear / conv layer plus attention from
the shapes), expedited below its plain twin, and running for every kind of model."""
import os.path as osp
import runpy

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = runpy.run_path(osp.join(REPO, 'tools', 'analysis_tools', 'get_flops.py'))
CFG = {
    'fcn': 'configs/winwin/experiments/'
           'fcn_rope-vit-4l-64d_1xb4-600i_synthetic-cue-ade20k-192x384.py',
    'upernet': 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py',
    'expedite': 'configs/expedite/upernet-expedite_rope-vit-tiny-a2-s0.7_synthetic-ade20k-'
                '128x128.py',
}


def _count(path, shape=None, argv=()):
    args = [path if '::' in path else osp.join(REPO, path)] + list(argv)
    if shape:
        args += ['--shape', str(shape[0]), str(shape[1])]
    return TOOL['main'](args)


def test_macs_equal_a_count_by_hand_of_the_tiny_vit_and_fcn_head():
    """Every nn.Linear / nn.Conv2d counted by a forward hook (output elements x inputs per
    output), plus attention (q k^T and attn v) of the 4 blocks: 2 heads of 32 dims."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, CFG['fcn']))
    model = TOOL['build_model'](cfg)
    H, W = 64, 128
    macs = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Linear):
            macs.append(out.numel() * m.in_features)
        else:
            k = m.kernel_size[0] * m.kernel_size[1]
            macs.append(out.numel() * m.in_channels // m.groups * k)
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        TOOL['test_forward'](model, (H, W))()
    n = (H // 16) * (W // 16)
    attention = 4 * 2 * (n * n * 32 * 2)  # blocks x heads x (QK^T + AV)
    got = _count(CFG['fcn'], (H, W))
    assert got['macs'] == sum(macs) + attention
    assert got['flops'] == 2 * got['macs'] and got['shape'] == (H, W)
    assert got['params'] == sum(p.numel() for p in model.parameters())


def test_expedited_counts_fewer_macs_than_its_plain_twin():
    plain = _count(CFG['upernet'], (256, 256))
    fast = _count(CFG['expedite'], (256, 256))
    assert fast['params'] == plain['params']  # same weights
    assert fast['macs'] < plain['macs']


@pytest.mark.parametrize('path, shape, model', [
    ('configs/vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py', None, 'MaskRCNN'),
    ('configs/vitdet/mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py', None,
     'Mask2Former'),
    ('configs/winwin/vitdepth_rope-vit-tiny_fullres_1xb2-20i_synthetic-nyu-128x192.py',
     (64, 96), 'DepthEstimator'),
    ('configs/winwin_flow/fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py',
     (64, 96), 'WinWinFlowEstimator'),
    ('mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py', (32, 64), 'EncoderDecoder'),
])
def test_every_kind_of_model(path, shape, model, capsys):
    got = _count(path, shape)
    assert got['model'] == model and got['macs'] > 0 and got['params'] > 0
    out = capsys.readouterr().out
    assert f'GMACs: {got["macs"] / 1e9:.4g}' in out and 'Input shape: (3,' in out
    if shape is None:
        assert got['shape'] == (128, 128)  # the config's size
