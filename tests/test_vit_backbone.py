"""The RoPE ViT backbone: shapes, registration, gradient checkpointing, checkpoints."""
import warnings

import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from mmwinwin.layers import CheckpointMismatchError, RoPEVisionTransformer, load_vit_state_dict

TINY = dict(embed_dims=32, num_layers=2, num_heads=2)


@pytest.mark.parametrize('size,grid', [((64, 64), (4, 4)), ((50, 70), (4, 5)),
                                       ((33, 17), (3, 2)), ((16, 160), (1, 10))])
def test_output_shapes_any_input_size(size, grid):
    vit = RoPEVisionTransformer(arch=TINY, patch_size=16, out_indices=(0, 1)).eval()
    outs = vit(torch.randn(2, 3, *size))
    assert [tuple(o.shape) for o in outs] == [(2, 32) + grid] * 2


def test_presets_and_options():
    vit = RoPEVisionTransformer(arch='tiny', with_cls_token=True, use_abs_pos_embed=True,
                                img_size=64, out_indices=(-1, 5))
    assert (vit.embed_dims, vit.num_layers, vit.num_heads) == (192, 12, 3)
    assert vit.out_indices == (11, 5)
    assert vit.pos_embed.shape == (1, 1 + 16, 192)
    outs = vit.eval()(torch.randn(1, 3, 96, 80))
    assert [tuple(o.shape) for o in outs] == [(1, 192, 6, 5)] * 2
    base = RoPEVisionTransformer(arch='base')
    assert sum(p.numel() for p in base.parameters()) == pytest.approx(85.8e6, rel=0.01)


def test_abs_pos_embed_is_read_at_window_positions():
    """Windows must read the same absolute embedding as the full image at their place."""
    vit = RoPEVisionTransformer(arch=TINY, use_rope=False, use_abs_pos_embed=True, img_size=64)
    pos_full = torch.stack(torch.meshgrid(torch.arange(6.), torch.arange(8.), indexing='ij'), -1).view(-1, 2)
    full = vit.abs_pos_embed(pos_full, (6, 8))
    sub = vit.abs_pos_embed(pos_full[[9, 20, 47]], (6, 8))
    torch.testing.assert_close(sub, full[:, [9, 20, 47]])


def test_with_cp_matches_plain_forward_and_grads():
    torch.manual_seed(0)
    a = RoPEVisionTransformer(arch=TINY, drop_path_rate=0.0)
    b = RoPEVisionTransformer(arch=TINY, with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 48, 32)
    a(x)[0].square().sum().backward()
    b(x)[0].square().sum().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-5, rtol=1e-4, msg=n)


@pytest.mark.parametrize('scope,type_name', [('mmseg', 'RoPEViT'), ('mmdet', 'RoPEViT'),
                                             ('mmseg', 'mmwinwin.RoPEViT'),
                                             ('mmdet', 'mmwinwin.RoPEViT')])
def test_build_by_name_in_each_scope(scope, type_name):
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    registry = SEG if scope == 'mmseg' else DET
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type=type_name, arch=TINY, patch_size=8))
    assert type(model).__name__ == 'RoPEViT'
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 32, 4, 4)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(KeyError, match="Unknown ViT arch 'gigantic'.*base"):
        RoPEVisionTransformer(arch='gigantic')
    with pytest.raises(KeyError, match='missing'):
        RoPEVisionTransformer(arch=dict(embed_dims=32))
    with pytest.raises(IndexError, match='out_indices entry 7'):
        RoPEVisionTransformer(arch=TINY, out_indices=7)
    vit = RoPEVisionTransformer(arch=TINY)
    with pytest.raises(ValueError, match=r'3-channel images but got 1 channels.*in_channels=1'):
        vit(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        vit(torch.randn(3, 32, 32))


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
