"""Token pooling (the sanity floor) on the one block loop: pooling / upsampling against
torch's avg_pool2d / interpolate, the policy against a manual loop, the backbone option."""
import pytest
import torch
import torch.nn.functional as F

from mmwinwin.layers import (RoPEVisionTransformer, TokenPoolingSettings, pool_grid,
                             pooled_forward_tokens, upsample_grid)
from mmwinwin.layers.vit.rope import grid_positions

torch.set_num_threads(1)
ARCH = dict(embed_dims=32, num_layers=4, num_heads=2)


def _grid(x, hw):
    return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)


@pytest.mark.parametrize('hw,stride', [((6, 8), (2, 2)), ((7, 9), (2, 2)), ((5, 7), (3, 2)),
                                       ((4, 4), (1, 3))])
def test_pool_and_upsample_match_torch(hw, stride):
    x = torch.randn(2, hw[0] * hw[1], 5)
    pooled, phw = pool_grid(x, hw, stride)
    ref = F.avg_pool2d(_grid(x, hw), stride, stride, ceil_mode=True)
    assert phw == tuple(ref.shape[2:])
    torch.testing.assert_close(_grid(pooled, phw), ref)
    up = upsample_grid(pooled, phw, hw)
    torch.testing.assert_close(_grid(up, hw), F.interpolate(ref, size=hw, mode='bilinear',
                                                            align_corners=False))


def _vit(**kw):
    torch.manual_seed(0)
    return RoPEVisionTransformer(arch=ARCH, patch_size=4, out_indices=(0, 1, 2, 3), **kw).eval()


@pytest.mark.parametrize('kw', [dict(), dict(with_cls_token=True)])
def test_policy_matches_a_manual_loop(kw):
    vit = _vit(**kw)
    hw, alpha, stride = (7, 8), 2, (2, 2)
    torch.manual_seed(1)
    tokens, pos = torch.randn(2, 56, 32), grid_positions(*hw)
    with torch.no_grad():
        ref = vit.forward_tokens(tokens, pos, hw)
        outs = pooled_forward_tokens(vit, tokens, pos, hw, TokenPoolingSettings(alpha, stride))
        p = vit.num_prefix_tokens
        x, P, want = vit.prepare_tokens(tokens, pos, hw), pos, []
        for i in range(vit.num_layers):
            x = vit.blocks[i](x, P, p)
            o = vit.output_tokens(i, x)
            if i >= alpha:
                o = _grid(o, (4, 4))
                o = F.interpolate(o, size=hw, mode='bilinear', align_corners=False)
                o = o.flatten(2).transpose(1, 2)
            want.append(o)
            if i == alpha - 1:
                g = F.avg_pool2d(_grid(x[:, p:], hw), stride, stride, ceil_mode=True)
                x = torch.cat([x[:, :p], g.flatten(2).transpose(1, 2)], 1)
                P = F.avg_pool2d(_grid(pos[None], hw), stride, stride, ceil_mode=True)
                P = P.flatten(2).transpose(1, 2)[0]
    for i, (o, w_, r_) in enumerate(zip(outs, want, ref)):
        assert o.shape == r_.shape == (2, 56, 32)
        torch.testing.assert_close(o, w_)
        if i < alpha:
            assert torch.equal(o, r_)


def test_alpha_num_layers_is_the_plain_model():
    vit = _vit()
    tokens, pos = torch.randn(1, 30, 32), grid_positions(5, 6)
    with torch.no_grad():
        ref = vit.forward_tokens(tokens, pos, (5, 6))
        outs = pooled_forward_tokens(vit, tokens, pos, (5, 6), TokenPoolingSettings(4, 2))
    for o, r in zip(outs, ref):
        assert torch.equal(o, r)


def test_bad_settings_name_the_fix():
    with pytest.raises(ValueError, match=r'alpha must be in 1\.\.4'):
        TokenPoolingSettings(alpha=5).check_alpha(4)
    with pytest.raises(ValueError, match='stride must be'):
        TokenPoolingSettings(alpha=1, stride=0)
    with pytest.raises(KeyError, match="Did you mean 'stride'"):
        TokenPoolingSettings.build(dict(alpha=1, strides=2))
    assert TokenPoolingSettings(alpha=1, stride=3).stride == (3, 3)


def test_backbone_option(tmp_path):
    pytest.importorskip('mmseg')
    from mmseg.registry import MODELS

    import mmwinwin.models  # noqa: F401
    cfg = dict(arch=ARCH, patch_size=8, out_indices=(1, 3))
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='RoPEViT', **cfg)).eval()
    path = tmp_path / 'vit.pth'
    torch.save(plain.state_dict(), path)
    pooled = MODELS.build(dict(type='ExpeditedRoPEViT', token_pooling=dict(alpha=2, stride=2),
                               **cfg)).eval()
    missing, unexpected = pooled.load_state_dict(torch.load(path), strict=True)
    assert not missing and not unexpected
    img = torch.randn(1, 3, 72, 80)  # 9x10 tokens: a partial cell row
    with torch.no_grad():
        ref, out = plain(img), pooled(img)
    assert [o.shape for o in out] == [r.shape for r in ref]
    assert torch.equal(out[0], ref[0])
    with pytest.raises(ValueError, match=r'alpha must be in 1\.\.4'):
        MODELS.build(dict(type='ExpeditedRoPEViT', token_pooling=dict(alpha=5), **cfg))
    with pytest.raises(ValueError, match='at most one token policy'):
        MODELS.build(dict(type='ExpeditedRoPEViT', token_pooling=dict(alpha=2),
                          token_merging=dict(r=2), **cfg))


# ------------------------------------------------------------------ ViTDet (partitions)
def _vitdet():
    from mmwinwin.layers import ViTDetVisionTransformer
    torch.manual_seed(0)
    return ViTDetVisionTransformer(arch=ARCH, partition_size=4, global_indices=[1, 3],
                                   out_indices=(0, 1, 2, 3)).eval()


def test_partitioned_pooling():
    from mmwinwin.layers import PartitionedTokenPoolingPolicy, pooled_partitioned_forward
    vit = _vitdet()
    torch.manual_seed(1)
    # one 4x4 partition, pooled to one 2x2 partition: the plain pooling policy
    tokens, pos = torch.randn(2, 16, 32), grid_positions(4, 4)
    s = TokenPoolingSettings(alpha=1, stride=2)
    with torch.no_grad():
        a = pooled_partitioned_forward(vit, tokens, pos, (4, 4), s)
        b = pooled_forward_tokens(vit, tokens, pos, (4, 4), s)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    # a padded grid: shapes kept, alpha = num_layers is ViTDet itself
    tokens, pos = torch.randn(2, 70, 32), grid_positions(7, 10)
    with torch.no_grad():
        ref = vit.forward_grid(tokens, pos, (7, 10))
        same = pooled_partitioned_forward(vit, tokens, pos, (7, 10), TokenPoolingSettings(4, 2))
        outs = pooled_partitioned_forward(vit, tokens, pos, (7, 10), TokenPoolingSettings(2, 3))
    for o, x, r in zip(outs, same, ref):
        assert torch.equal(x, r) and o.shape == r.shape and o.isfinite().all()
    assert torch.equal(outs[1], ref[1])
    with pytest.raises(ValueError, match='square stride'):
        PartitionedTokenPoolingPolicy(TokenPoolingSettings(1, (2, 1)), (4, 4))


def test_vitdet_backbone_option():
    pytest.importorskip('mmdet')
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    import mmwinwin.models  # noqa: F401
    cfg = dict(arch=ARCH, partition_size=4, global_indices=[1, 3])
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        plain = MODELS.build(dict(type='RoPEViTDet', **cfg)).eval()
        pooled = MODELS.build(dict(type='ExpeditedRoPEViTDet',
                                   token_pooling=dict(alpha=2, stride=2), **cfg)).eval()
        pooled.load_state_dict(plain.state_dict(), strict=True)
        img = torch.randn(1, 3, 112, 160)
        with torch.no_grad():
            ref, out = plain(img), pooled(img)
        assert [o.shape for o in out] == [r.shape for r in ref]
        with pytest.raises(ValueError, match='use stride=2'):
            MODELS.build(dict(type='ExpeditedRoPEViTDet', token_pooling=dict(stride=(2, 1)),
                              **cfg))
