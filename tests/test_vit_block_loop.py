"""The one block loop (``layers/vit/block_loop.run_blocks``) and its token-policy seam.

Every model (plain, ViTDet-partitioned, Expedite, partitioned Expedite, the CroCo flow
encoder) runs through it; each test here checks a model's output against the blocks
called by hand in a for loop written in the test, never against the loop itself."""
import pytest
import torch

from mmwinwin.layers import (ExpediteSettings, RoPEVisionTransformer, TokenPolicy,
                             ViTDetVisionTransformer, cluster_partitions, cluster_sequence,
                             expedited_forward_tokens, expedited_partitioned_forward,
                             grid_positions, reconstruct_partitions, reconstruct_tokens,
                             run_blocks)
from mmwinwin.layers.flow.croco import CroCoFlowNet

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2)


def _by_hand(vit, x, pos, blocks, mask=None):
    """Blocks ``blocks`` of ``vit`` called one after the other, no loop helper."""
    for i in blocks:
        x = vit.blocks[i](x, pos, vit.num_prefix_tokens, mask)
    return x


def _windows(t, B, H, W, ws):
    """(B, H*W, D) -> (B * H/ws * W/ws, ws*ws, D), windows in row-major order."""
    D = t.shape[-1]
    t = t.reshape(B, H // ws, ws, W // ws, ws, D).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(-1, ws * ws, D)


def _unwindows(t, B, H, W, ws):
    D = t.shape[-1]
    t = t.reshape(B, H // ws, W // ws, ws, ws, D).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(B, H * W, D)


class _Recorder(TokenPolicy):
    """Records every hook call with the token count it sees; after block 1 keeps every
    other patch token (and its position)."""

    def __init__(self):
        self.calls = []

    def before_block(self, index, state):
        self.calls.append(('before', index, state.x.shape[1]))

    def block(self, index, state):
        self.calls.append(('block', index, state.x.shape[1]))
        return super().block(index, state)

    def output(self, index, state):
        self.calls.append(('output', index, state.x.shape[1]))
        return super().output(index, state)

    def after_block(self, index, state):
        self.calls.append(('after', index, state.x.shape[1]))
        if index == 1:
            p = state.vit.num_prefix_tokens
            state.x = torch.cat([state.x[:, :p], state.x[:, p::2]], dim=1)
            state.pos = state.pos[::2]


@torch.no_grad()
def test_custom_policy_acts_at_the_seam():
    torch.manual_seed(0)
    vit = RoPEVisionTransformer(ARCH, patch_size=4, out_indices=(1, 3),
                                with_cls_token=True).eval()
    tokens, pos, hw = vit.embed_image(torch.randn(2, 3, 16, 24))  # 4x6 = 24 tokens
    x = vit.prepare_tokens(tokens, pos, hw)
    policy = _Recorder()
    outs = run_blocks(vit, x, pos, policy)

    n = 1 + 24  # cls + patches, then half the patches after block 1
    expected = []
    for i in range(4):
        m = n if i <= 1 else 1 + 12
        expected += [('before', i, m), ('block', i, m)]
        if i in (1, 3):
            expected.append(('output', i, m))
        expected.append(('after', i, m))
    assert policy.calls == expected

    y = _by_hand(vit, x, pos, [0, 1])
    ref1 = y[:, 1:]
    y = torch.cat([y[:, :1], y[:, 1::2]], dim=1)
    y = _by_hand(vit, y, pos[::2], [2, 3])
    ref3 = vit.norm(y)[:, 1:]
    assert [o.shape[1] for o in outs] == [24, 12]
    torch.testing.assert_close(outs[0], ref1, rtol=0, atol=0)
    torch.testing.assert_close(outs[1], ref3, rtol=0, atol=0)


def test_bad_policy_and_out_indices_are_named():
    vit = RoPEVisionTransformer(ARCH, patch_size=4).eval()
    x, pos = torch.randn(1, 4, 32), grid_positions(2, 2)
    with pytest.raises(TypeError, match='TokenPolicy'):
        run_blocks(vit, x, pos, policy=object())
    with pytest.raises(IndexError, match=r'out_indices \[-1\].*0\.\.3'):
        run_blocks(vit, x, pos, out_indices=[-1])


@pytest.mark.parametrize('with_cls', [False, True])
@torch.no_grad()
def test_plain_vit_equals_blocks_by_hand(with_cls):
    torch.manual_seed(1)
    vit = RoPEVisionTransformer(ARCH, patch_size=4, out_indices=(0, 2, 3),
                                with_cls_token=with_cls).eval()
    img = torch.randn(2, 3, 20, 28)
    outs = vit(img)
    tokens, hw = vit.patch_embed(img)
    pos = grid_positions(*hw)
    x = vit.prepare_tokens(tokens, pos, hw)
    p = vit.num_prefix_tokens
    refs = []
    for i in range(4):
        x = _by_hand(vit, x, pos, [i])
        if i in (0, 2, 3):
            o = (vit.norm(x) if i == 3 else x)[:, p:]
            refs.append(o.transpose(1, 2).reshape(2, 32, *hw))
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, rtol=0, atol=0)


def _vitdet():
    return ViTDetVisionTransformer(ARCH, patch_size=4, partition_size=4, global_indices=[1, 3],
                                   out_indices=(0, 2, 3)).eval()


def _vitdet_by_hand(vit, x, pos, hw, blocks):
    (H, W), B = hw, x.shape[0]
    for i in blocks:
        if i in (1, 3):
            x = _by_hand(vit, x, pos, [i])
        else:
            w = _by_hand(vit, _windows(x, B, H, W, 4),
                         _windows(pos.expand(B, -1, -1), B, H, W, 4), [i])
            x = _unwindows(w, B, H, W, 4)
    return x


@torch.no_grad()
def test_vitdet_equals_partitioned_blocks_by_hand():
    torch.manual_seed(2)
    vit = _vitdet()
    img = torch.randn(2, 3, 32, 48)  # 8x12 tokens, 2x3 partitions of 4x4
    outs = vit(img)
    tokens, hw = vit.patch_embed(img)
    pos = grid_positions(*hw)
    x = vit.prepare_tokens(tokens, pos, hw)
    refs = []
    for i in range(4):
        x = _vitdet_by_hand(vit, x, pos, hw, [i])
        if i in (0, 2, 3):
            o = vit.norm(x) if i == 3 else x
            refs.append(o.transpose(1, 2).reshape(2, 32, *hw))
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('reconstruct', [True, False])
@torch.no_grad()
def test_expedite_equals_blocks_by_hand(reconstruct):
    torch.manual_seed(3)
    vit = RoPEVisionTransformer(ARCH, patch_size=4, out_indices=(1, 3),
                                with_cls_token=True).eval()
    tokens, pos, hw = vit.embed_image(torch.randn(2, 3, 32, 40))  # 8x10 tokens
    s = ExpediteSettings(alpha=2, cluster_grid=(4, 5), window=3, k=3, temperature=0.1)
    outs, weights = expedited_forward_tokens(vit, tokens, pos, hw, s, reconstruct=reconstruct)
    x = _by_hand(vit, vit.prepare_tokens(tokens, pos, hw), pos, [0, 1])
    ref1 = x[:, 1:]
    c, cpos, _, w = cluster_sequence(x, 1, hw, s, pos=pos)
    ref3 = vit.norm(_by_hand(vit, c, cpos, [2, 3]))[:, 1:]
    if reconstruct:
        ref3 = reconstruct_tokens(ref3, w)
    assert outs[1].shape[1] == (80 if reconstruct else 20)
    torch.testing.assert_close(outs[0], ref1, rtol=0, atol=0)
    torch.testing.assert_close(outs[1], ref3, rtol=0, atol=0)
    torch.testing.assert_close(weights.weight, w.weight, rtol=0, atol=0)


@pytest.mark.parametrize('alpha', [1, 2])
@torch.no_grad()
def test_partitioned_expedite_equals_blocks_by_hand(alpha):
    torch.manual_seed(4)
    vit = _vitdet()
    img = torch.randn(2, 3, 32, 48)
    tokens, hw = vit.patch_embed(img)
    H, W = hw
    pos = grid_positions(H, W)
    s = ExpediteSettings(alpha=alpha, cluster_grid=(2, 2), window=3, k=3, temperature=0.1)
    outs = expedited_partitioned_forward(vit, tokens, pos, hw, s)
    x = _vitdet_by_hand(vit, vit.prepare_tokens(tokens, pos, hw), pos, hw, range(alpha))
    refs = [_vitdet_by_hand(vit, vit.prepare_tokens(tokens, pos, hw), pos, hw, [0])]
    cl = cluster_partitions(x.reshape(2, H, W, 32), 4, s, pos=pos.reshape(H, W, 2))
    y, cpos = cl.centers, cl.pos  # (2 * 6 partitions, 4 clusters, C)
    for i in range(alpha, 4):
        if i in (1, 3):  # global: all 24 clusters of an image together
            y = _by_hand(vit, y.reshape(2, 24, 32), cpos.reshape(2, 24, 2), [i]).reshape(12, 4, 32)
        else:
            y = _by_hand(vit, y, cpos, [i])
        if i in (2, 3):
            o = vit.norm(y) if i == 3 else y
            refs.append(reconstruct_partitions(o, cl).reshape(2, H * W, 32))
    assert len(outs) == len(refs) == 3
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@torch.no_grad()
def test_croco_encoder_equals_blocks_by_hand():
    torch.manual_seed(5)
    net = CroCoFlowNet(encoder=dict(arch=ARCH, patch_size=4), dec_embed_dims=32,
                       dec_num_layers=4, dec_num_heads=2, head_features=16,
                       head_layer_dims=(8, 8, 16, 16)).eval()
    enc = net.encoder
    tok, pos, _ = enc.embed_image(torch.randn(2, 3, 16, 16))
    key_mask = torch.ones(2, 16, dtype=torch.bool)
    key_mask[1, 10:] = False  # the second image's last tokens are padding
    for mask in (None, key_mask):
        got = net._encode(tok, pos, mask)
        am = None if mask is None else mask[:, None, None, :]
        ref = enc.norm(_by_hand(enc, enc.prepare_tokens(tok, pos), pos, range(4), am))
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    # the encoder output is the first hook of the flow forward
    hooks = net.forward_tokens(tok[:1], pos, tok[1:], pos)
    ref = enc.norm(_by_hand(enc, enc.prepare_tokens(tok[:1], pos), pos, range(4)))
    torch.testing.assert_close(hooks[0], ref, rtol=0, atol=0)
