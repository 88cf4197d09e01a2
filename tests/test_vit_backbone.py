"""The RoPE ViT backbone: shapes, options, registration, gradient checkpointing."""
import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from mmwinwin.layers import RoPEVisionTransformer

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
