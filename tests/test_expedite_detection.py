"""Expedite for detection backbones: clusters per window in the ViTDet-style RoPE ViT and
in mmdet's SwinTransformer. Checkpoints of the plain models load unchanged, outputs keep
their shapes and types, and the identity setting reproduces the plain model. (The pure
per-partition clustering is tested in test_expedite_partitioned.py.)"""
import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from mmdet.registry import MODELS

from mmwinwin.layers import (ExpediteSettings, ViTDetVisionTransformer, cluster_partitions,
                             reconstruct_partitions)
from mmwinwin.models.expedite.partitioned import (relative_position_index,
                                                  resize_relative_position_bias,
                                                  swin_block_forward)

VIT = dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2), partition_size=4,
           global_indices=[1, 3])
SWIN = dict(embed_dims=32, depths=[2, 2, 4, 2], num_heads=[2, 2, 4, 4], window_size=6,
            out_indices=(0, 1, 2, 3))


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """Each test builds in mmdet's scope, whatever test module set the default last."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _build(cfg):
    m = MODELS.build(cfg)
    m.eval()  # mmdet's Swin.train() returns None, so no chaining
    return m


def test_relative_position_bias_index_and_resize():
    idx = relative_position_index(3)
    # token (0,0) vs (2,2): offset (-2,-2) -> row 0; (2,2) vs (0,0): last row
    assert idx[0, 8] == 0 and idx[8, 0] == 24 and idx[4, 4] == 12
    table = torch.randn(23 * 23, 4)
    assert torch.equal(resize_relative_position_bias(table, 12, 12), table)
    # former option: bicubic, corners aligned -> corners and the zero offset are kept
    small = resize_relative_position_bias(table, 12, 8, 'bicubic-aligned')
    assert small.shape == (15 * 15, 4)
    torch.testing.assert_close(small[0], table[0])
    torch.testing.assert_close(small[7 * 15 + 7], table[11 * 23 + 11])
    # official default: bilinear, align_corners=False. Independent: output row i samples
    # source coordinate (i + 0.5) * 23 / 15 - 0.5 (clamped at 0), linear in each axis.
    out = resize_relative_position_bias(table, 12, 8)
    src = table.reshape(23, 23, 4).double()

    def lerp_axis(v, n_out, n_in, dim):
        rows = []
        for i in range(n_out):
            c = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            lo = min(int(c), n_in - 1)
            hi = min(lo + 1, n_in - 1)
            f = c - lo
            rows.append(v.select(dim, lo) * (1 - f) + v.select(dim, hi) * f)
        return torch.stack(rows, dim)

    ref = lerp_axis(lerp_axis(src, 15, 23, 0), 15, 23, 1).reshape(225, 4)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='bias_resize'):
        resize_relative_position_bias(table, 12, 8, 'nearest')
    with pytest.raises(ValueError, match='rows'):
        resize_relative_position_bias(table, 10, 8)


# ------------------------------------------------------------- ViTDet-style
def test_expedited_windowed_vit_checkpoint_shapes_identity():
    torch.manual_seed(0)
    plain = _build(dict(type='RoPEViTDet', **VIT))
    ckpt = plain.state_dict()
    img = torch.randn(2, 3, 112, 144)  # 7x9 tokens: windows padded
    exp_cfg = dict(alpha=2, num_clusters=4, window=3, temperature=0.05, k=3)
    exp = _build(dict(type='ExpeditedRoPEViTDet', expedite=exp_cfg, **VIT))
    res = exp.load_state_dict(ckpt, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    assert set(exp.state_dict()) == set(ckpt)
    with torch.no_grad():
        a, b = plain(img), exp(img)
        assert type(a) is type(b) and len(a) == len(b)
        assert a[0].shape == b[0].shape and a[0].dtype == b[0].dtype
        assert torch.isfinite(b[0]).all() and not torch.allclose(a[0], b[0])
        # identity: alpha = number of blocks (no block runs on clusters) and expedite=None
        ident = _build(dict(type='ExpeditedRoPEViTDet', expedite=dict(exp_cfg, alpha=4),
                            **VIT))
        ident.load_state_dict(ckpt)
        none = _build(dict(type='ExpeditedRoPEViTDet', expedite=None, **VIT))
        none.load_state_dict(ckpt)
        torch.testing.assert_close(ident(img)[0], a[0])
        torch.testing.assert_close(none(img)[0], a[0])


def test_expedited_windowed_vit_clusters_follow_reference():
    """Independent computation: cluster per window, then the remaining blocks by hand
    (window block on each window's clusters, global block on all clusters)."""
    torch.manual_seed(0)
    vit = ViTDetVisionTransformer(**VIT).eval()
    s = ExpediteSettings(alpha=2, num_clusters=4, window=3, temperature=0.05, k=3)
    exp = _build(dict(type='ExpeditedRoPEViTDet', expedite=s.to_dict(), **VIT))
    exp.load_state_dict(vit.state_dict())
    img = torch.randn(1, 3, 128, 128)  # 8x8 tokens, 4 windows of 4x4
    with torch.no_grad():
        tokens, hw = vit.patch_embed(img)
        from mmwinwin.layers import grid_positions
        pos = grid_positions(*hw)
        x = vit.run_windowed_block(0, tokens, pos, hw)
        x = vit.blocks[1](x, pos)  # block 1 is global
        c = cluster_partitions(x.view(1, 8, 8, 32), 4, s, pos=pos.view(1, 8, 8, 2))
        y = torch.stack([vit.blocks[2](c.centers[w:w + 1], c.pos[w:w + 1])[0]
                         for w in range(4)])  # windowed block, per window
        y = vit.blocks[3](y.reshape(1, 16, 32), c.pos.reshape(1, 16, 2)).reshape(4, 4, 32)
        ref = reconstruct_partitions(vit.norm(y), c)
        out = exp(img)[0]
    torch.testing.assert_close(out, ref.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------- Swin
def test_swin_block_forward_matches_mmdet_block():
    torch.manual_seed(0)
    swin = _build(dict(type='SwinTransformer', **SWIN))
    for blk in swin.stages[2].blocks[:2]:  # plain and shifted windows, padded grid
        y = torch.randn(2, 13 * 15, 128)
        torch.testing.assert_close(swin_block_forward(blk, y, (13, 15)), blk(y, (13, 15)))


def test_expedited_swin_checkpoint_shapes_identity():
    torch.manual_seed(0)
    plain = _build(dict(type='SwinTransformer', **SWIN))
    ckpt = plain.state_dict()
    exp_cfg = dict(alpha=6, num_clusters=16, window=3, temperature=0.05, k=4)
    exp = _build(dict(type='ExpeditedSwinTransformer', expedite=exp_cfg, **SWIN))
    res = exp.load_state_dict(ckpt, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    img = torch.randn(1, 3, 200, 232)
    with torch.no_grad():
        a, b = plain(img), exp(img)
        assert type(a) is type(b) and len(a) == len(b) == 4
        for t, u in zip(a, b):
            assert t.shape == u.shape and t.dtype == u.dtype and torch.isfinite(u).all()
        # stages before the clustered one are untouched; the clustered stage and the
        # next one change (stage boundary: full resolution rebuilt before patch merging)
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])
        assert not torch.allclose(a[2], b[2])
        for alpha in (10,):  # alpha = number of blocks: nothing clustered, identity
            ident = _build(dict(type='ExpeditedSwinTransformer',
                                expedite=dict(exp_cfg, alpha=alpha), **SWIN))
            ident.load_state_dict(ckpt)
            for t, u in zip(a, ident(img)):
                torch.testing.assert_close(t, u)


def test_expedite_bad_settings():
    with pytest.raises(ValueError, match='alpha'):
        MODELS.build(dict(type='ExpeditedSwinTransformer', expedite=dict(alpha=40), **SWIN))
    with pytest.raises(KeyError, match="expedite: unknown key 'alpa'.*Did you mean 'alpha'"):
        MODELS.build(dict(type='ExpeditedRoPEViTDet', expedite=dict(alpa=2), **VIT))
    with pytest.raises(ValueError, match='square'):
        MODELS.build(dict(type='ExpeditedSwinTransformer',
                          expedite=dict(alpha=6, cluster_grid=(2, 3), window=3, k=4), **SWIN))
