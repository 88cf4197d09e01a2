"""Token merging (ToMe / tomesd) on the one block loop: the matching against tomesd, several
merges against a plain-loop restatement, proportional attention, the policy and the
backbone option."""
import math

import pytest
import torch

from mmwinwin.layers import (Attention, RoPEVisionTransformer, TokenMergingPolicy,
                             TokenMergingSettings, bipartite_soft_matching, grid_destinations,
                             merge_tokens, merged_forward_tokens, run_blocks, unmerge_tokens,
                             update_holder)
from mmwinwin.layers.vit.rope import grid_positions

torch.set_num_threads(1)
ARCH = dict(embed_dims=32, num_layers=4, num_heads=2)


def _merge_once(x, metric, hw, stride, r, generator=None):
    h, w = hw
    dst, src = grid_destinations(h, w, stride, generator)
    m = bipartite_soft_matching(metric, src[None], dst[None], r)
    sizes, (y,) = merge_tokens(m, torch.ones(x.shape[0], h * w, 1, dtype=x.dtype), x)
    holder = update_holder(torch.arange(h * w).expand(x.shape[0], -1), m, h * w)
    return y, sizes, holder


@pytest.mark.parametrize('h,w,stride,r', [(6, 8, (2, 2), 5), (7, 9, (2, 2), 17),
                                          (8, 8, (1, 2), 20), (5, 7, (3, 2), 12),
                                          (4, 4, (2, 2), 12)])
def test_one_merge_matches_tomesd(h, w, stride, r):
    merge_mod = pytest.importorskip('tomesd.merge')
    g = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(2, h * w, 16, generator=g)
    metric = torch.randn(2, h * w, 8, generator=g)
    sy, sx = stride
    t_merge, t_unmerge = merge_mod.bipartite_soft_matching_random2d(metric, w, h, sx, sy, r,
                                                                    no_rand=True)
    ref_merged = t_merge(x, mode='mean')
    y, sizes, holder = _merge_once(x, metric, (h, w), stride, r)
    assert y.shape == ref_merged.shape == (2, h * w - r, 16)
    # same merged set (tomesd orders [kept sources | destinations], mmwinwin [dst | kept])
    torch.testing.assert_close(y.sort(dim=1).values, ref_merged.sort(dim=1).values)
    torch.testing.assert_close(unmerge_tokens(y, holder), t_unmerge(ref_merged))
    assert sizes.sum(1).flatten().tolist() == [h * w] * 2


def test_random_destinations_match_tomesd():
    merge_mod = pytest.importorskip('tomesd.merge')
    h, w, r = 6, 6, 7
    x, metric = torch.randn(1, h * w, 4), torch.randn(1, h * w, 4)
    t_merge, t_unmerge = merge_mod.bipartite_soft_matching_random2d(
        metric, w, h, 2, 2, r, generator=torch.Generator().manual_seed(3))
    y, _, holder = _merge_once(x, metric, (h, w), (2, 2), r, torch.Generator().manual_seed(3))
    torch.testing.assert_close(unmerge_tokens(y, holder), t_unmerge(t_merge(x)))
    dst_first, _ = grid_destinations(h, w, (2, 2))
    dst_rand, _ = grid_destinations(h, w, (2, 2), torch.Generator().manual_seed(3))
    assert not torch.equal(dst_first, dst_rand) and dst_rand.numel() == 9


def _restated_merges(values, hw, stride, rs):
    """The paper's rule with plain loops: sets of original tokens, sizes add, values are
    size-weighted means; the metric is the current value (tomesd's 'tokens'); the
    destinations are the first token of each stride cell, for every step."""
    h, w = hw
    sy, sx = stride
    dst_orig = {(cy * sy) * w + cx * sx for cy in range(h // sy) for cx in range(w // sx)}
    groups = [[i] for i in range(h * w)]  # current token -> original tokens
    vals = [values[i].clone() for i in range(h * w)]
    for r in rs:
        dsts = [j for j, g in enumerate(groups) if g[0] in dst_orig]
        srcs = [j for j, g in enumerate(groups) if g[0] not in dst_orig]
        best = []
        for a in srcs:
            sims = [float(torch.nn.functional.cosine_similarity(vals[a], vals[b], dim=0))
                    for b in dsts]
            k = max(range(len(dsts)), key=lambda t: sims[t])
            best.append((sims[k], a, dsts[k]))
        best.sort(key=lambda t: -t[0])
        gone = set()
        for _, a, b in best[:r]:
            sa, sb = len(groups[a]), len(groups[b])
            vals[b] = (vals[b] * sb + vals[a] * sa) / (sa + sb)
            groups[b] = groups[b] + groups[a]
            gone.add(a)
        keep = [j for j in range(len(groups)) if j not in gone]
        groups, vals = [groups[j] for j in keep], [vals[j] for j in keep]
    out = torch.empty_like(values)
    sizes = {}
    for g, v in zip(groups, vals):
        for i in g:
            out[i] = v
            sizes[i] = len(g)
    return out, sizes


@pytest.mark.parametrize('hw,stride,rs', [((6, 6), (2, 2), [5, 5, 5]),
                                          ((5, 7), (2, 2), [3, 8, 2, 6]),
                                          ((6, 4), (3, 1), [4, 4])])
def test_several_merges_and_unmerge_match_restatement(hw, stride, rs):
    h, w = hw
    g = torch.Generator().manual_seed(sum(rs))
    values = torch.randn(h * w, 6, generator=g, dtype=torch.float64)
    ref, ref_sizes = _restated_merges(values, hw, stride, rs)
    x = values[None]
    dst, src = grid_destinations(h, w, stride)
    a_idx, b_idx, nb = src[None], dst[None], dst.numel()
    sizes = torch.ones(1, h * w, 1, dtype=torch.float64)
    holder = torch.arange(h * w)[None]
    for r in rs:
        m = bipartite_soft_matching(x, a_idx, b_idx, r)
        sizes, (x,) = merge_tokens(m, sizes, x)
        holder = update_holder(holder, m, m.a_idx.shape[1] + m.b_idx.shape[1])
        n = x.shape[1]
        a_idx, b_idx = torch.arange(nb, n)[None], torch.arange(nb)[None]
    assert x.shape[1] == h * w - sum(rs)
    torch.testing.assert_close(unmerge_tokens(x, holder)[0], ref)
    assert unmerge_tokens(sizes, holder)[0, :, 0].tolist() == [ref_sizes[i] for i in range(h * w)]


def test_proportional_attention_restatement():
    torch.manual_seed(0)
    attn = Attention(8, 2).eval()
    x = torch.randn(1, 5, 8)
    sizes = torch.tensor([1., 3., 1., 2., 5.])
    with torch.no_grad():
        out = attn(x, attn_mask=sizes.log()[None, None, None])
        q, k, v = attn.qkv(x).reshape(1, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(4) + sizes.log()
        ref = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(1, 5, 8))
        plain = attn(x)
        zero = attn(x, attn_mask=torch.zeros(1, 1, 1, 5))
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(zero, plain)  # all sizes 1: the plain attention


def _vit(**kw):
    torch.manual_seed(0)
    return RoPEVisionTransformer(arch=ARCH, patch_size=4, out_indices=(0, 1, 2, 3), **kw).eval()


def _plain(vit, hw, B=2):
    torch.manual_seed(1)
    tokens = torch.randn(B, hw[0] * hw[1], 32)
    pos = grid_positions(*hw)
    with torch.no_grad():
        return tokens, pos, vit.forward_tokens(tokens, pos, hw)


@pytest.mark.parametrize('settings', [dict(r=0, alpha=1), dict(r=6, alpha=4)])
def test_no_merge_is_the_plain_model(settings):
    vit = _vit(with_cls_token=True)
    tokens, pos, ref = _plain(vit, (6, 8))
    with torch.no_grad():
        outs = merged_forward_tokens(vit, tokens, pos, (6, 8), TokenMergingSettings(**settings))
    for o, r in zip(outs, ref):
        assert torch.equal(o, r)


@pytest.mark.parametrize('kw,metric', [(dict(with_cls_token=True), 'keys'),
                                       (dict(mask_k_bias=True), 'keys'),
                                       (dict(), 'tokens')])
def test_policy_matches_a_manual_loop(kw, metric):
    vit = _vit(**kw)
    for b in vit.blocks:  # nonzero biases, so a masked key bias would show
        torch.nn.init.normal_(b.attn.qkv.bias, std=0.5)
    hw, r, alpha = (6, 8), 5, 2
    tokens, pos, ref = _plain(vit, hw)
    s = TokenMergingSettings(r=r, alpha=alpha, metric=metric)
    with torch.no_grad():
        outs = merged_forward_tokens(vit, tokens, pos, hw, s)
        # restatement: blocks 0..alpha-1 plain, then per block: metric, merge, block with
        # log(size) bias, outputs unmerged
        p, C = vit.num_prefix_tokens, 32
        x = vit.prepare_tokens(tokens, pos, hw)
        P = pos.expand(2, -1, -1)
        want = []
        dst, src = grid_destinations(*hw, (2, 2))
        a_idx, b_idx, nb = src[None], dst[None], dst.numel()
        sizes, holder, mask = torch.ones(2, 48, 1), torch.arange(48).expand(2, -1), None
        x_in = x  # the input of the block that ran last
        for i in range(vit.num_layers):
            if i >= alpha:
                if metric == 'keys':
                    blk = vit.blocks[i - 1]
                    bias = blk.attn.qkv.bias[C:2 * C] * (0 if kw.get('mask_k_bias') else 1)
                    k = torch.nn.functional.linear(blk.norm1(x_in), blk.attn.qkv.weight[C:2 * C],
                                                   bias)
                    met = k[:, p:].reshape(2, -1, 2, 16).mean(2)
                else:
                    met = x[:, p:]
                m = bipartite_soft_matching(met, a_idx, b_idx, r)
                n = x.shape[1] - p
                sizes, (patches, P) = merge_tokens(m, sizes, x[:, p:], P)
                holder = update_holder(holder, m, n)
                x = torch.cat([x[:, :p], patches], 1)
                a_idx, b_idx = torch.arange(nb, x.shape[1] - p)[None], torch.arange(nb)[None]
                full = torch.cat([torch.ones(2, p, 1), sizes], 1)
                mask = full.log().transpose(1, 2)[:, None]
            x_in = x
            x = vit.blocks[i](x, P if i >= alpha else pos, p, mask)
            o = vit.output_tokens(i, x)
            want.append(o if i < alpha else unmerge_tokens(o, holder))
    for i, (o, w_, r_) in enumerate(zip(outs, want, ref)):
        assert o.shape == r_.shape == (2, 48, 32)
        torch.testing.assert_close(o, w_)
        if i < alpha:
            assert torch.equal(o, r_)


def test_positions_are_size_weighted_means():
    vit = _vit()
    tokens, pos, _ = _plain(vit, (6, 6), B=1)
    x = vit.prepare_tokens(tokens, pos, (6, 6))
    seen = {}

    class Spy(TokenMergingPolicy):
        def block(self, index, state):
            seen[index] = state.pos
            return super().block(index, state)

    policy = Spy(TokenMergingSettings(r=7, alpha=2), (6, 6))
    with torch.no_grad():
        run_blocks(vit, x, pos, policy)
    final = seen[3][0]  # (36 - 14, 2)
    assert final.shape == (22, 2)
    for j in range(final.shape[0]):
        members = (policy.holder[0] == j).nonzero().flatten()
        torch.testing.assert_close(final[j], pos[members].mean(0))
        assert policy.sizes[0, j, 0] == members.numel()


def test_random_destinations_are_seeded():
    vit = _vit()
    tokens, pos, _ = _plain(vit, (6, 8))
    with torch.no_grad():
        a = merged_forward_tokens(vit, tokens, pos, (6, 8),
                                  TokenMergingSettings(r=6, dst='random', seed=1))
        b = merged_forward_tokens(vit, tokens, pos, (6, 8),
                                  TokenMergingSettings(r=6, dst='random', seed=1))
        c = merged_forward_tokens(vit, tokens, pos, (6, 8), TokenMergingSettings(r=6))
    assert torch.equal(a[-1], b[-1]) and not torch.equal(a[-1], c[-1])


def test_bad_settings_name_the_fix():
    with pytest.raises(ValueError, match='r <= 12'):
        TokenMergingSettings(r=13, alpha=1).check_tokens((6, 8), 4)  # 36 sources, 3 merges
    TokenMergingSettings(r=12, alpha=1).check_tokens((6, 8), 4)
    with pytest.raises(ValueError, match=r'alpha must be in 1\.\.4'):
        TokenMergingSettings(r=2, alpha=5).check_alpha(4)
    with pytest.raises(ValueError, match='r must be an int >= 0'):
        TokenMergingSettings(r=-1)
    with pytest.raises(ValueError, match="metric must be one of \\('keys', 'tokens'\\)"):
        TokenMergingSettings(r=1, metric='key')
    with pytest.raises(ValueError, match='stride must be'):
        TokenMergingSettings(r=1, stride=(2, 0))
    with pytest.raises(ValueError, match='stride of at most'):
        TokenMergingSettings(r=1, stride=8).check_tokens((6, 8), 4)
    with pytest.raises(KeyError, match="Did you mean 'alpha'"):
        TokenMergingSettings.build(dict(r=1, alpah=2))
    with pytest.raises(ValueError, match='needs r'):
        TokenMergingSettings.build(dict(alpha=2))
    assert TokenMergingSettings(r=1, stride=3).stride == (3, 3)


def test_backbone_option(tmp_path):
    pytest.importorskip('mmseg')
    from mmseg.registry import MODELS

    import mmwinwin.models  # noqa: F401
    cfg = dict(arch=ARCH, patch_size=8, out_indices=(1, 3))
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='RoPEViT', **cfg)).eval()
    path = tmp_path / 'vit.pth'
    torch.save(plain.state_dict(), path)
    tome = MODELS.build(dict(type='ExpeditedRoPEViT', token_merging=dict(alpha=2, r=10),
                             **cfg)).eval()
    missing, unexpected = tome.load_state_dict(torch.load(path), strict=True)
    assert not missing and not unexpected
    img = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        ref, out = plain(img), tome(img)
    assert [o.shape for o in out] == [r.shape for r in ref]
    assert torch.equal(out[0], ref[0])  # block 2 = alpha: before merging
    assert not torch.allclose(out[1], ref[1])
    with pytest.raises(ValueError, match=r'alpha must be in 1\.\.4'):
        MODELS.build(dict(type='ExpeditedRoPEViT', token_merging=dict(alpha=5, r=2), **cfg))
    with pytest.raises(ValueError, match='at most one token policy'):
        MODELS.build(dict(type='ExpeditedRoPEViT', token_merging=dict(r=2),
                          expedite=dict(alpha=2), **cfg))
    too_many = MODELS.build(dict(type='ExpeditedRoPEViT', token_merging=dict(alpha=2, r=31),
                                 **cfg))
    with pytest.raises(ValueError, match='Use r <= 30'):  # 8x10 grid: 60 sources, 2 merges
        too_many(img)


# ------------------------------------------------------------------ ViTDet (partitions)
def _vitdet(global_indices):
    from mmwinwin.layers import ViTDetVisionTransformer
    torch.manual_seed(0)
    return ViTDetVisionTransformer(arch=ARCH, partition_size=4, global_indices=global_indices,
                                   out_indices=(0, 1, 2, 3)).eval()


def test_partitioned_one_partition_is_the_plain_policy():
    """One partition covering the grid: the per-partition merge is the plain one."""
    from mmwinwin.layers import merged_partitioned_forward
    vit = _vitdet([1, 3])
    tokens, pos = torch.randn(2, 16, 32), grid_positions(4, 4)
    s = TokenMergingSettings(r=2, alpha=1)
    with torch.no_grad():
        a = merged_partitioned_forward(vit, tokens, pos, (4, 4), s)
        b = merged_forward_tokens(vit, tokens, pos, (4, 4), s)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_partitioned_merges_each_partition_on_its_own():
    """Only partitioned blocks after alpha: each 4x4 partition of an 8x12 grid merges and
    attends on its own, as the plain policy on that partition alone (at its positions);
    block alpha-1 = 1 is global, so the merge's keys come from the whole grid."""
    from mmwinwin.layers import merged_partitioned_forward
    vit = _vitdet([1])
    hw, alpha = (8, 12), 2
    torch.manual_seed(2)
    tokens, pos = torch.randn(1, 96, 32), grid_positions(*hw)
    s = TokenMergingSettings(r=3, alpha=alpha)
    with torch.no_grad():
        outs = merged_partitioned_forward(vit, tokens, pos, hw, s)
        # blocks 0..alpha-1 as ViTDet, then every partition through the plain policy
        grid = vit.prepare_tokens(tokens, pos, hw)
        grid = vit.run_windowed_block(0, grid, pos, hw)
        for py in range(2):
            for px in range(3):
                rows = torch.arange(py * 4, py * 4 + 4)[:, None] * 12 + torch.arange(px * 4,
                                                                                   px * 4 + 4)
                idx = rows.flatten()

                class FromBlock1(TokenMergingPolicy):
                    def block(self, index, state):
                        if index == 0:  # block 0 already ran (windowed, = this partition)
                            return state.x
                        if index == 1:  # global block 1 ran on the whole grid: its keys
                            out = super().block(index, _Whole(state, grid, pos))
                            self._keys = self._keys[:, idx]  # this partition's keys
                            return out[:, idx]
                        return super().block(index, state)

                policy = FromBlock1(s, (4, 4))
                part = run_blocks(vit, grid[:, idx], pos[idx], policy)
                for i in range(alpha, vit.num_layers):
                    torch.testing.assert_close(outs[i][:, idx], part[i])


class _Whole:
    """A loop state whose tokens are the whole grid (for the global block of the test)."""

    def __init__(self, state, grid, pos):
        self.vit, self.x, self.pos, self.attn_mask, self.extra = state.vit, grid, pos, None, {}


def test_partitioned_padding_weighs_nothing():
    from mmwinwin.layers import merged_partitioned_forward
    vit = _vitdet([1, 3])
    torch.manual_seed(3)
    tokens, pos = torch.randn(2, 70, 32), grid_positions(7, 10)  # 4x4 partitions, padded
    with torch.no_grad():
        ref = vit.forward_grid(tokens, pos, (7, 10))
        for kw in (dict(alpha=2), dict(alpha=2, proportional_attention=False, metric='tokens'),
                   dict(alpha=1)):  # block alpha-1 global, global, partitioned
            outs = merged_partitioned_forward(vit, tokens, pos, (7, 10),
                                              TokenMergingSettings(r=3, **kw))
            assert all(o.shape == r.shape and o.isfinite().all() for o, r in zip(outs, ref))
            assert torch.equal(outs[0], ref[0])
    # a size-0 source adds nothing; a size-0 destination that receives stays 0
    x = torch.tensor([[[1.], [5.], [9.]]])
    dst, src = torch.tensor([[0, 2]]), torch.tensor([[1]])
    m = bipartite_soft_matching(x, src, dst, 1)
    sizes, (y,) = merge_tokens(m, torch.tensor([[[2.], [0.], [1.]]]), x)
    assert y.flatten().tolist() == [1., 9.] and sizes.flatten().tolist() == [2., 1.]


def test_vitdet_backbone_option():
    pytest.importorskip('mmdet')
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    import mmwinwin.models  # noqa: F401
    cfg = dict(arch=ARCH, partition_size=4, global_indices=[1, 3])
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        plain = MODELS.build(dict(type='RoPEViTDet', **cfg)).eval()
        tome = MODELS.build(dict(type='ExpeditedRoPEViTDet', token_merging=dict(alpha=2, r=3),
                                 **cfg)).eval()
        tome.load_state_dict(plain.state_dict(), strict=True)
        img = torch.randn(1, 3, 112, 160)
        with torch.no_grad():
            ref, out = plain(img), tome(img)
        assert [o.shape for o in out] == [r.shape for r in ref]
        with pytest.raises(ValueError, match='Use r <= 6'):  # 12 sources per 4x4, 2 merges
            MODELS.build(dict(type='ExpeditedRoPEViTDet', token_merging=dict(alpha=2, r=7),
                              **cfg))
        with pytest.raises(ValueError, match='at most one token policy'):
            MODELS.build(dict(type='ExpeditedRoPEViTDet', token_merging=dict(r=1),
                              token_pooling=dict(alpha=2), **cfg))
