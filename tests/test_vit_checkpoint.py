"""ViT checkpoint loading (layers/vit/checkpoint.py): timm / DeiT / MAE / mmseg layouts,
converted keys giving the source model's outputs, mismatch errors, the converter script."""
import warnings

import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from mmwinwin.layers import CheckpointMismatchError, RoPEVisionTransformer, load_vit_state_dict

TINY = dict(embed_dims=32, num_layers=2, num_heads=2)


def _timm_style_state(model: RoPEVisionTransformer) -> dict:
    """What a timm/DeiT checkpoint looks like: our keys plus a classifier head,
    an absolute position embedding and a cls token, under 'model'."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['head.weight'] = torch.randn(10, model.embed_dims)
    state['head.bias'] = torch.zeros(10)
    state['pos_embed'] = torch.randn(1, 17, model.embed_dims)
    state['cls_token'] = torch.randn(1, 1, model.embed_dims)
    return {'model': state}


def test_timm_checkpoint_gives_source_outputs(tmp_path):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    source = RoPEVisionTransformer(arch=TINY, patch_size=8).eval()
    path = tmp_path / 'timm_vit.pth'
    torch.save(_timm_style_state(source), path)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='RoPEViT', arch=TINY, patch_size=8,
                                  init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.warns(UserWarning, match='pos_embed'):
        model.init_weights()
    x = torch.randn(2, 3, 40, 56)
    torch.testing.assert_close(model.eval()(x)[0], source(x)[0])


def test_mmseg_vit_checkpoint_gives_mmseg_outputs():
    """mmseg's own VisionTransformer (an independent implementation) converted to our
    keys gives the same features, with abs. position embedding and cls token."""
    from mmseg.models.backbones import VisionTransformer
    torch.manual_seed(0)
    ref = VisionTransformer(img_size=(32, 32), patch_size=8, embed_dims=32, num_layers=2,
                            num_heads=2, mlp_ratio=4, out_indices=(0, 1), final_norm=True,
                            with_cls_token=True, norm_cfg=dict(type='LN', eps=1e-6),
                            interpolate_mode='bicubic')
    ref.eval()  # (mmseg's train() returns None, so no chaining)
    torch.nn.init.normal_(ref.pos_embed, std=0.5)
    ours = RoPEVisionTransformer(arch=TINY, patch_size=8, img_size=32, out_indices=(0, 1),
                                 use_rope=False, use_abs_pos_embed=True, with_cls_token=True).eval()
    load_vit_state_dict(ours, ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(ref(x), ours(x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_wrong_width_checkpoint_names_keys():
    small = RoPEVisionTransformer(arch=TINY)
    wide = RoPEVisionTransformer(arch=dict(embed_dims=64, num_layers=2, num_heads=2))
    with pytest.raises(CheckpointMismatchError, match=r'patch_embed\.proj\.weight: checkpoint \(64'):
        load_vit_state_dict(small, wide.state_dict())
    deep = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=3, num_heads=2))
    with pytest.raises(CheckpointMismatchError, match=r'unexpected in checkpoint.*blocks\.2\.'):
        load_vit_state_dict(small, deep.state_dict())


def test_converter_script_roundtrip(tmp_path):
    from conftest import run_tool
    torch.manual_seed(0)
    source = RoPEVisionTransformer(arch=TINY, patch_size=8).eval()
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(_timm_style_state(source), src)
    out = run_tool(['tools/model_converters/vit2mmwinwin.py', str(src), str(dst)])
    assert "dropped ['pos_embed']" in out
    target = RoPEVisionTransformer(arch=TINY, patch_size=8, with_cls_token=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # nothing is silently dropped or missing
        load_vit_state_dict(target, torch.load(dst, weights_only=True))
