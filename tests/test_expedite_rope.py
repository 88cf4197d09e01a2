"""Expedite on mmwinwin's RoPE ViT (pure core and registered backbone)."""
import pytest
import torch

from mmwinwin.layers import (ExpediteSettings, RoPEVisionTransformer, cluster_tokens,
                             expedited_forward_tokens, reconstruct_tokens, reconstruction_weights)

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2)


def make_vit(**kw):
    torch.manual_seed(0)
    return RoPEVisionTransformer(arch=ARCH, patch_size=8, **kw).eval()


def test_last_alpha_equals_plain():
    vit = make_vit(out_indices=(1, 3))
    img = torch.randn(2, 3, 48, 40)
    tokens, pos, hw = vit.embed_image(img)
    ref = vit.forward_tokens(tokens, pos, hw)
    outs, weights = expedited_forward_tokens(vit, tokens, pos, hw, ExpediteSettings(
        alpha=4, cluster_grid=(3, 3), window=3, k=4))
    assert weights is None
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r)


@pytest.mark.parametrize('with_cls', [False, True])
def test_identity_clusters_equal_plain(with_cls):
    vit = make_vit(out_indices=(0, 2, 3), with_cls_token=with_cls)
    img = torch.randn(2, 3, 48, 40)  # 6x5 tokens
    tokens, pos, hw = vit.embed_image(img)
    ref = vit.forward_tokens(tokens, pos, hw)
    outs, _ = expedited_forward_tokens(vit, tokens, pos, hw, ExpediteSettings(
        alpha=1, cluster_grid=(6, 5), window=1, k=1))
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-5)


def test_matches_manual_composition():
    """The expedited forward = blocks 1..alpha, cluster (positions = weighted mean),
    blocks on clusters at those positions, reconstruct -- written out here by hand."""
    vit = make_vit(out_indices=(3,))
    img = torch.randn(2, 3, 64, 48)  # 8x6 tokens
    tokens, pos, hw = vit.embed_image(img)
    s = ExpediteSettings(alpha=2, cluster_grid=(4, 3), iters=3, window=3, temperature=0.1, k=5)
    outs, weights = expedited_forward_tokens(vit, tokens, pos, hw, s)
    x = vit.prepare_tokens(tokens, pos, hw)
    for i in range(2):
        x = vit.run_block(i, x, pos)
    res = cluster_tokens(x, hw, (4, 3), iters=3, window=3, temperature=0.1, pos=pos)
    y = res.centers
    for i in range(2, 4):
        y = vit.run_block(i, y, res.pos)
    w = reconstruction_weights(x, res, k=5)
    ref = reconstruct_tokens(vit.norm(y), w)
    torch.testing.assert_close(outs[0], ref)
    # positions are fractional weighted means inside the image
    assert res.pos.min() >= 0 and res.pos[..., 0].max() <= 7 and res.pos[..., 1].max() <= 5
    assert not torch.equal(res.pos, res.pos.round())


def test_registered_backbone_keys_and_outputs(tmp_path):
    pytest.importorskip('mmseg')
    from mmseg.registry import MODELS

    import mmwinwin  # noqa: F401
    cfg = dict(arch=ARCH, patch_size=8, out_indices=(1, 3))
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='RoPEViT', **cfg)).eval()
    path = tmp_path / 'vit.pth'
    torch.save(plain.state_dict(), path)
    exp = MODELS.build(dict(type='ExpeditedRoPEViT', expedite=dict(
        alpha=2, cluster_scale=0.5, window=3, k=4), **cfg)).eval()
    missing, unexpected = exp.load_state_dict(torch.load(path), strict=True)
    assert not missing and not unexpected
    img = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        ref = plain(img)
        out = exp(img)
        clustered, w = exp.forward_expedited(img, reconstruct=False)
    assert [o.shape for o in out] == [r.shape for r in ref]
    torch.testing.assert_close(out[0], ref[0])  # layer 2 = alpha: before clustering
    assert clustered[1].shape[2:] == (4, 5) and w.cluster_grid == (4, 5)
    with pytest.raises(ValueError, match='outside the network'):
        MODELS.build(dict(type='ExpeditedRoPEViT', expedite=dict(alpha=5), **cfg))


def test_bad_settings():
    with pytest.raises(ValueError, match='only one of'):
        ExpediteSettings(cluster_grid=(4, 4), num_clusters=16)
    with pytest.raises(ValueError, match='local candidate'):
        ExpediteSettings(cluster_grid=(28, 28), window=3, k=20, reconstruction_topk='local')
    ExpediteSettings(cluster_grid=(28, 28), window=3, k=20)  # official global top-k: fine
    with pytest.raises(ValueError, match='candidate_window must be one of'):
        ExpediteSettings(candidate_window='clamped')
    with pytest.raises(ValueError, match='reconstruct'):
        ExpediteSettings(reconstruct='head')
