"""Every Expedite config parses (mmseg:: bases resolve) and its settings fit its model."""
import glob
import os

import pytest
from mmengine.config import Config

from mmwinwin.layers import ExpediteSettings

ROOT = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs', 'expedite')
CONFIGS = sorted(glob.glob(os.path.join(ROOT, '*.py')))


def test_configs_exist():
    names = [os.path.basename(c) for c in CONFIGS]
    assert 'segmenter-expedite_vit-l_mask-a10-28x28_ade20k-640x640.py' in names
    assert len(names) >= 8


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_settings_valid(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['mmwinwin']
    bb = cfg.model.backbone
    assert bb.type in ('ExpeditedMMSegViT', 'ExpeditedRoPEViT')
    s = ExpediteSettings.build(dict(bb.expedite))
    if bb.type == 'ExpeditedMMSegViT':
        num_layers = bb.get('num_layers', 12)
    else:
        from mmwinwin.layers.vit.rope_families import FAMILY_PRESETS
        from mmwinwin.layers.vit.vision_transformer import resolve_arch
        arch = bb.arch
        if isinstance(arch, str) and arch in FAMILY_PRESETS:  # e.g. 'dinov3-vitl16'
            arch = FAMILY_PRESETS[arch]['arch']
        num_layers = resolve_arch(arch)['num_layers']
    s.check_alpha(num_layers)
    assert s.alpha < num_layers
    if s.reconstruct == 'logits':
        assert cfg.model.type == 'ExpeditedEncoderDecoder'
        assert cfg.model.decode_head.type == 'SegmenterMaskTransformerHead'


def test_paper_setting_segmenter_vit_l():
    cfg = Config.fromfile(
        os.path.join(ROOT, 'segmenter-expedite_vit-l_mask-a10-28x28_ade20k-640x640.py'))
    e = cfg.model.backbone.expedite
    assert (e.alpha, tuple(e.cluster_grid), e.iters, e.window, e.temperature, e.k) == \
        (10, (28, 28), 5, 5, 0.02, 20)
    assert cfg.model.backbone.num_layers == 24 and cfg.model.backbone.embed_dims == 1024
    assert tuple(cfg.model.test_cfg.crop_size) == (640, 640)


@pytest.mark.parametrize('name', ['upernet-expedite_dinov3-vitl16-a10-s0.7_ade20k-512x512.py',
                                  'mask2former-expedite_dinov3-vitl16-a10-s0.7_ade20k-512x512.py'])
def test_dinov3_vit_l_expedite_configs_build(name):
    """DINOv3 ViT-L/16 with a UPerNet and a Mask2Former head: the whole segmentor builds
    (shapes only), the backbone is the DINOv3 preset with 24 blocks and clustering after
    block 10, and the heads take its 1024 channels."""
    import torch
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import mmwinwin  # noqa: F401
    cfg = Config.fromfile(os.path.join(ROOT, name))
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    bb = model.backbone
    assert (bb.rope_type, bb.num_layers, bb.embed_dims, bb.num_reg_tokens) == \
        ('dinov3', 24, 1024, 4)
    assert bb.expedite.alpha == 10 and bb.expedite.alpha < bb.num_layers
