"""The fast path of the core (issue 16 item 2): no host synchronisation inside the
forwards once the index tables are cached, bf16 autocast through the ViT, Win-Win and
Expedite paths, and RoPE's gradients in float64.

A host synchronisation shows up in torch's dispatcher as ``aten._local_scalar_dense``
(``.item()``, ``int(t)``, ``bool(t)``, ``if t.all()``, ``assert t``) or ``aten.nonzero``
(a data-dependent shape): the tests record those ops while the forward runs.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmwinwin.layers import (ExpediteSettings, RoPEVisionTransformer, embed_windows,
                             expedited_forward_tokens, pair_window_tokens)
from mmwinwin.layers.vit.rope import RoPE2D

SYNC_OPS = {'_local_scalar_dense', 'nonzero', 'is_nonzero', 'unique', '_unique2'}


class SyncRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._overloadpacket.__name__
        if name in SYNC_OPS:
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def _vit(**kw):
    torch.manual_seed(0)
    return RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=4, num_heads=2),
                                 **kw).eval()


def test_vit_and_winwin_forward_have_no_host_sync():
    vit = _vit()
    img = torch.randn(2, 3, 96, 128)
    wins = [[(0, 0, 3, 3), (3, 4, 3, 3)], [(1, 1, 3, 3), (2, 5, 3, 3)]]
    with torch.no_grad(), SyncRecorder() as rec:
        vit(img)
        tok, pos = embed_windows(vit.patch_embed, img, wins, 16)
        vit.forward_tokens(tok, pos, (6, 8))
    assert rec.ops == []


def test_expedited_forward_syncs_only_for_the_finite_check():
    vit = _vit(with_cls_token=True)
    img = torch.randn(1, 3, 128, 160)
    tokens, pos, grid = vit.embed_image(img)
    for s in (ExpediteSettings(alpha=2, cluster_grid=(4, 5), k=8),
              ExpediteSettings(alpha=2, cluster_grid=(4, 5), k=8, candidate_window='shifted',
                               reconstruction_topk='local', empty_cluster='keep')):
        with torch.no_grad():
            expedited_forward_tokens(vit, tokens, pos, grid, s)  # builds the cached plan
            with SyncRecorder() as rec:
                expedited_forward_tokens(vit, tokens, pos, grid, s)
        # one: the documented non-finite-token check at the clustering entry (a clear
        # error for NaN / inf instead of NaN clusters); none in clustering's loops
        assert rec.ops == ['_local_scalar_dense'], s


def test_pair_window_tokens_build_on_host():
    # on the meta device any data-dependent read fails: the selection must come from the
    # window integers on the host
    wins = [[(0, 0, 3, 3), (4, 4, 3, 3)], [(2, 2, 3, 3), (5, 0, 3, 3)]]
    idx1, idx2, mask2 = pair_window_tokens(wins, (8, 8), margin=1, device='meta')
    assert idx1.device.type == idx2.device.type == mask2.device.type == 'meta'
    ref1, ref2, refm = pair_window_tokens(wins, (8, 8), margin=1)
    # the same selection on the CPU, against the grown windows written out here
    for b, ws in enumerate(wins):
        grown = set()
        for t, l, h, w in ws:
            for y in range(max(0, t - 1), min(8, t + h + 1)):
                for x in range(max(0, l - 1), min(8, l + w + 1)):
                    grown.add(y * 8 + x)
        n = len(grown)
        assert ref2[b, :n].tolist() == sorted(grown)
        assert refm[b].tolist() == [True] * n + [False] * (ref2.shape[1] - n)
    assert tuple(idx2.shape) == tuple(ref2.shape)
    same = [[(1, 1, 2, 2)], [(4, 4, 2, 2)]]  # equal counts: no mask
    assert pair_window_tokens(same, (8, 8), margin=1, device='meta')[2] is None


def _rel_err(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


TOL = 0.05  # relative L2 error of bf16 autocast against fp32 (bf16 has an 8-bit mantissa)


def test_bf16_autocast_vit_winwin_expedite_close_to_fp32():
    vit = _vit(with_cls_token=True)
    img = torch.randn(1, 3, 128, 160)
    wins = [[(0, 0, 4, 4), (4, 5, 4, 4)]]
    s = ExpediteSettings(alpha=2, cluster_grid=(4, 5), k=8)

    def run():
        full = vit(img)[-1]
        tok, pos = embed_windows(vit.patch_embed, img, wins, 16)
        ww = vit.forward_tokens(tok, pos, (8, 10))[-1]
        tokens, p, grid = vit.embed_image(img)
        ex = expedited_forward_tokens(vit, tokens, p, grid, s)[0][-1]
        return full, ww, ex

    with torch.no_grad():
        ref = run()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = run()
    for name, a, b in zip(('ViT', 'Win-Win', 'Expedite'), low, ref):
        assert torch.isfinite(a).all(), name
        assert _rel_err(a, b) < TOL, (name, _rel_err(a, b))


def test_bf16_autocast_training_step_finite():
    vit = _vit()
    vit.train()
    img = torch.randn(1, 3, 64, 64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = vit(img)[-1].float().pow(2).mean()
    loss.backward()
    grads = [p.grad for p in vit.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_rope_gradcheck_float64():
    rope = RoPE2D(8, base=100.0).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 8, dtype=torch.float64, generator=g, requires_grad=True)
    pos = (torch.rand(5, 2, dtype=torch.float64, generator=g) * 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, p: rope(a, p), (x, pos))


def test_rope_float64_equals_rotation_written_here():
    rope = RoPE2D(8, base=100.0).double()
    x = torch.randn(1, 1, 3, 8, dtype=torch.float64)
    pos = torch.tensor([[0.0, 0.0], [1.5, -2.0], [3.0, 7.25]], dtype=torch.float64)
    out = rope(x, pos)
    # per axis (y: channels 0-3, x: 4-7), pairs (c, c + 2) rotated by pos * base^(-2i/4)
    ref = torch.empty_like(x)
    for axis in range(2):
        for i in range(2):
            theta = pos[:, axis] * 100.0 ** (-2 * i / 4)
            a, b = x[0, 0, :, axis * 4 + i], x[0, 0, :, axis * 4 + i + 2]
            ref[0, 0, :, axis * 4 + i] = a * theta.cos() - b * theta.sin()
            ref[0, 0, :, axis * 4 + i + 2] = b * theta.cos() + a * theta.sin()
    # the frequency table is a float32 buffer (rounded at ~1e-7), the rest float64
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
