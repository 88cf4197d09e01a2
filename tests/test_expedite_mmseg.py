"""Expedite on mmseg's own VisionTransformer, built from mmseg's configs (tiny archs)."""
import copy
import os

import mmseg
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmwinwin  # noqa: F401  (registers)
from mmwinwin.models.expedite import use_fused_attention

register_all_modules(init_default_scope=False)  # tests set mmseg's scope themselves (below)
CFG_ROOT = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs')
IMG = 64  # 4x4 tokens of 16 px


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Each test builds in mmseg's scope, whatever test module set the default last."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def segmenter_cfg(num_layers=3):
    cfg = Config.fromfile(os.path.join(
        CFG_ROOT, 'segmenter', 'segmenter_vit-t_mask_8xb1-160k_ade20k-512x512.py'))
    m = cfg.model
    m.pretrained = None
    m.backbone.update(img_size=(IMG, IMG), embed_dims=32, num_layers=num_layers, num_heads=2,
                      drop_path_rate=0.0)
    m.decode_head.update(in_channels=32, channels=32, embed_dims=32, num_heads=2, num_layers=1,
                         num_classes=5)
    m.data_preprocessor.size = (IMG, IMG)
    return m


def upernet_cfg():
    cfg = Config.fromfile(os.path.join(
        CFG_ROOT, 'vit', 'vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py'))
    m = cfg.model
    m.pretrained = None
    m.backbone.update(img_size=(IMG, IMG), embed_dims=32, num_layers=4, num_heads=2,
                      out_indices=(0, 1, 2, 3))
    m.neck.update(in_channels=[32] * 4, out_channels=32)
    m.decode_head.update(in_channels=[32] * 4, channels=16, num_classes=5,
                         norm_cfg=dict(type='BN', requires_grad=True))
    m.auxiliary_head.update(in_channels=32, channels=8, num_classes=5,
                            norm_cfg=dict(type='BN', requires_grad=True))
    m.data_preprocessor.size = (IMG, IMG)
    return m


def dpt_cfg():
    cfg = Config.fromfile(os.path.join(CFG_ROOT, 'dpt', 'dpt_vit-b16_8xb2-160k_ade20k-512x512.py'))
    m = cfg.model
    m.pretrained = None
    m.backbone.update(img_size=IMG, embed_dims=32, num_layers=4, num_heads=2,
                      out_indices=(0, 1, 2, 3))
    m.decode_head.update(in_channels=(32, 32, 32, 32), channels=16, embed_dims=32,
                         post_process_channels=[8, 16, 32, 32], num_classes=5,
                         norm_cfg=dict(type='BN', requires_grad=True))
    m.auxiliary_head = None
    m.data_preprocessor.size = (IMG, IMG)
    return m


def expedited(model_cfg, segmentor=True, **settings):
    e = copy.deepcopy(model_cfg)
    if segmentor:
        e.type = 'ExpeditedEncoderDecoder'
    e.backbone.type = 'ExpeditedMMSegViT'
    e.backbone.expedite = settings
    return e


def build_plain(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    # non-trivial normalisation/bias parameters so that every key matters
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias') or 'norm' in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def metas(n):
    return [dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), pad_shape=(IMG, IMG))] * n


def load_saved(plain, exp_cfg, tmp_path):
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=plain.state_dict(), meta=dict()), path)
    model = MODELS.build(exp_cfg)
    # strict: any missing or unexpected key raises
    load_checkpoint(model, path, map_location='cpu', strict=True)
    assert set(model.state_dict()) == set(plain.state_dict())
    return model.eval()


@pytest.mark.parametrize('make_cfg,n_layers', [(segmenter_cfg, 3), (upernet_cfg, 4),
                                               (dpt_cfg, 4)])
def test_checkpoint_loads_and_last_alpha_is_plain(make_cfg, n_layers, tmp_path):
    cfg = make_cfg()
    plain = build_plain(cfg)
    exp = load_saved(plain, expedited(cfg, alpha=n_layers, cluster_grid=(3, 3), window=3, k=4),
                     tmp_path)
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        ref = plain.encode_decode(x, metas(2))
        out = exp.encode_decode(x, metas(2))
        use_fused_attention(plain)  # same kernel: equal to float rounding only
        ref_fused = plain.encode_decode(x, metas(2))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, ref_fused, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('placement', ['backbone', 'logits'])
def test_identity_clustering_is_plain(placement, tmp_path):
    """alpha=1 with one cluster per token and window 1: the expedited model is the plain one."""
    cfg = segmenter_cfg()
    plain = build_plain(cfg)
    use_fused_attention(plain)
    exp = load_saved(plain, expedited(cfg, alpha=1, cluster_grid=(4, 4), window=1, k=1,
                                      reconstruct=placement), tmp_path)
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        torch.testing.assert_close(exp.encode_decode(x, metas(2)),
                                   plain.encode_decode(x, metas(2)), rtol=1e-4, atol=1e-5)


def test_real_clustering_runs_all_hosts(tmp_path):
    x = torch.randn(2, 3, 96, 80)  # non-square: 6x5 tokens
    m = [dict(img_shape=(96, 80), ori_shape=(96, 80), pad_shape=(96, 80))] * 2
    for make_cfg, placement in [(segmenter_cfg, 'logits'), (segmenter_cfg, 'backbone'),
                                (upernet_cfg, 'backbone'), (dpt_cfg, 'backbone')]:
        cfg = make_cfg()
        plain = build_plain(cfg)
        exp = load_saved(plain, expedited(cfg, alpha=2, num_clusters=12, window=3, k=4,
                                          temperature=0.05, reconstruct=placement), tmp_path)
        with torch.no_grad():
            ref = plain.encode_decode(x, m)
            out = exp.encode_decode(x, m)
        assert out.shape == ref.shape == (2, 5, 96, 80)
        assert torch.isfinite(out).all()
        assert not torch.allclose(out, ref)  # clustering really happened
        feats, weights = exp.backbone.forward_expedited(x, reconstruct=False)
        assert weights.cluster_grid == (4, 3)


def test_upernet_levels_before_alpha_untouched(tmp_path):
    cfg = upernet_cfg()
    plain = build_plain(cfg)
    use_fused_attention(plain)
    exp = load_saved(plain, expedited(cfg, segmentor=False, alpha=2, cluster_grid=(2, 2),
                                      window=1, k=1), tmp_path)
    x = torch.randn(1, 3, IMG, IMG)
    with torch.no_grad():
        ref = plain.backbone(x)
        out = exp.backbone(x)
    assert len(out) == 4
    for i in range(2):  # layers 1..alpha see all tokens
        torch.testing.assert_close(out[i], ref[i], rtol=1e-5, atol=1e-6)
    assert out[3].shape == ref[3].shape


def test_bad_settings():
    cfg = segmenter_cfg()
    for alpha in (0, 4):
        with pytest.raises(ValueError, match='outside the network'):
            MODELS.build(expedited(cfg, alpha=alpha, cluster_grid=(2, 2), window=1, k=1))
    with pytest.raises(ValueError, match='larger than the 2x2 = 4 clusters'):
        MODELS.build(expedited(cfg, alpha=1, cluster_grid=(2, 2), window=3, k=5))
    with pytest.raises(KeyError, match="expedite: unknown key 'grid'.*Did you mean 'cluster_grid'"):
        MODELS.build(expedited(cfg, alpha=1, grid=(2, 2)))
    model = MODELS.build(expedited(cfg, alpha=1, cluster_grid=(28, 28))).eval()
    with pytest.raises(ValueError, match='larger than the token grid 4x4'):
        with torch.no_grad():
            model.encode_decode(torch.randn(1, 3, IMG, IMG), metas(1))
    upn = MODELS.build(expedited(upernet_cfg(), alpha=1, cluster_grid=(2, 2), window=1, k=1,
                                 reconstruct='logits')).eval()
    with pytest.raises(ValueError, match="reconstruct='backbone'"):
        with torch.no_grad():
            upn.encode_decode(torch.randn(1, 3, IMG, IMG), metas(1))
