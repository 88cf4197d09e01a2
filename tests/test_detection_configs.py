"""Every detection config parses; models build from the small ones; the expedited
configs carry the paper's settings and their backbones accept the plain checkpoints."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmwinwin  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'vitdet', '[!_]*.py')) +
                 glob.glob(osp.join(ROOT, 'configs', 'expedite_det', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope in ('mmdet', 'mmseg')
    assert cfg.custom_imports['imports'] == ['mmwinwin']
    ev = cfg.test_evaluator
    for e in (ev if isinstance(ev, list) else [ev]):
        assert '_delete_' not in e and e['type'] != 'CocoPanopticMetric'  # no panopticapi


@pytest.mark.parametrize('name,expected', [
    ('mask2former_swin-l-p4-w12-384-in21k-expedite-a10-c64_16xb1-lsj-100e_coco-panoptic.py',
     dict(alpha=10, num_clusters=64, iters=5, window=7, temperature=0.05, k=10)),
    ('mask2former_swin-l-p4-w12-384-in21k-expedite-a12-c64_16xb1-lsj-100e_coco.py',
     dict(alpha=12, num_clusters=64, iters=5, window=11, temperature=0.01, k=60)),
])
def test_expedited_swin_l_configs(name, expected):
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'expedite_det', name))
    b = cfg.model.backbone
    assert b.type == 'ExpeditedSwinTransformer' and dict(b.expedite) == expected
    assert (b.embed_dims, b.depths, b.window_size) == (192, [2, 2, 18, 2], 12)
    # the same settings on a narrow Swin of the same layout (Swin-L itself is 0.2 G params):
    # 8x8 clusters per 12x12 window, plain keys load unchanged
    small = dict(b, embed_dims=16, num_heads=[1, 1, 2, 2], init_cfg=None)
    exp = MODELS.build(small)
    plain_cfg = {k: v for k, v in small.items() if k != 'expedite'}
    plain = MODELS.build(dict(plain_cfg, type='SwinTransformer'))
    res = exp.load_state_dict(plain.state_dict())
    assert not res.missing_keys and not res.unexpected_keys
    assert exp.expedite.grid_for((12, 12)) == (8, 8)
    exp.eval()
    with torch.no_grad():
        outs = exp(torch.randn(1, 3, 384, 416))
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]


def test_tiny_expedited_panoptic_model_uses_plain_checkpoint():
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    d = osp.join(ROOT, 'configs')
    plain = MODELS.build(Config.fromfile(osp.join(
        d, 'vitdet', 'mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py')).model)
    exp = MODELS.build(Config.fromfile(osp.join(
        d, 'expedite_det',
        'mask2former_rope-vit-tiny-win4-expedite-a2-c4_2i_coco-synth-panoptic-128x128.py')).model)
    res = exp.load_state_dict(plain.state_dict())
    assert not res.missing_keys and not res.unexpected_keys
    assert type(exp.backbone).__name__ == 'ExpeditedRoPEViTDet'


def test_mmseg_mask2former_ade20k_config_predicts():
    """The ADE20K Mask2Former config (mmseg) builds with the windowed backbone and simple
    FPN and predicts a 150-class map (backbone narrowed to stay fast on CPU)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'vitdet', 'mask2former_rope-vit-b-win14_8xb2-160k_ade20k-512x512.py'))
    assert cfg.model.backbone.type == 'RoPEViTDet'
    cfg.model.backbone.arch = dict(embed_dims=64, num_layers=2, num_heads=2)
    cfg.model.backbone.global_indices = [1]
    cfg.model.neck.in_channels = 64
    cfg.model.decode_head.pixel_decoder.encoder.num_layers = 1
    cfg.model.decode_head.transformer_decoder.num_layers = 1
    model = MODELS.build(cfg.model)
    model.eval()
    meta = dict(img_shape=(96, 128), ori_shape=(96, 128), pad_shape=(96, 128),
                batch_input_shape=(96, 128))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 96, 128), [SegDataSample(metainfo=meta)])
    seg = out[0].pred_sem_seg.data
    assert seg.shape == (1, 96, 128) and int(seg.max()) < 150
