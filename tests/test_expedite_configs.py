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
        arch = bb.arch
        num_layers = arch['num_layers'] if isinstance(arch, dict) else \
            dict(tiny=12, small=12, base=12, large=24, huge=32)[arch]
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
