"""Expedite's default operators equal the official ones.

The reference below re-states the official token clustering and reconstruction
(``/work/shared/papers.md`` section 2, Liang et al. 2022) as a plain dense O(N*M)
computation in float64, written from those bullets and never calling mmwinwin:

* initial centres: adaptive average pooling to (h, w); each token's initial cell is the
  nearest-neighbour resize of the cell-label grid, ``(floor(y*h/H), floor(x*w/W))``;
* candidates: centres with ``|d_row| <= r`` and ``|d_col| <= r`` of that cell,
  ``r = window // 2``, cut at the grid border;
* iterations: ``D`` raw squared L2, ``A = softmax over candidates of (-t D)`` (detached),
  centre = ``sum_i A x_i / clamp(sum_i A, 1e-16)``;
* reconstruction: ``W = exp(-t D)`` against the post-iteration centres, keep entries
  ``>=`` the k-th largest over all M centres, ``F.normalize`` rows, ``W @ refined``.
"""
import pytest
import torch
import torch.nn.functional as F

from mmwinwin.layers import (ExpediteSettings, cluster_partitions, cluster_tokens,
                             reconstruct_partitions, reconstruct_tokens, reconstruction_weights)
from mmwinwin.layers.expedite import reconstruction as reconstruction_module


# ------------------------------------------------------------- the reference
def official_candidates(H, W, h, w, window):
    """(N, M) bool: |d_row| <= r and |d_col| <= r from the token's cell, cut at the border."""
    r = window // 2
    labels = torch.arange(h * w, dtype=torch.float64).reshape(1, 1, h, w)
    cell = F.interpolate(labels, size=(H, W), mode='nearest').reshape(-1).long()  # (N,)
    cy, cx = cell // w, cell % w
    my = torch.arange(h).repeat_interleave(w)
    mx = torch.arange(w).repeat(h)
    return ((cy[:, None] - my[None]).abs() <= r) & ((cx[:, None] - mx[None]).abs() <= r)


def official_cluster(x, H, W, h, w, iters, window, t):
    x = x.double()
    B, N, C = x.shape
    mask = official_candidates(H, W, h, w, window)
    c = F.adaptive_avg_pool2d(x.transpose(1, 2).reshape(B, C, H, W), (h, w))
    c = c.flatten(2).transpose(1, 2)
    for _ in range(iters):
        D = ((x[:, :, None] - c[:, None]) ** 2).sum(-1)          # (B, N, M)
        A = (-t * D).masked_fill(~mask, float('-inf')).softmax(-1).detach()
        c = torch.einsum('bnm,bnc->bmc', A, x) / A.sum(1).clamp(min=1e-16)[..., None]
    return c


def official_reconstruct(x, c, refined, k, t):
    x, c, refined = x.double(), c.double(), refined.double()
    D = ((x[:, :, None] - c[:, None]) ** 2).sum(-1)
    Wt = torch.exp(-t * D)
    kth = Wt.topk(k, dim=-1).values[..., -1:]
    Wt = Wt * (Wt >= kth)
    return F.normalize(Wt, dim=-1, eps=1e-12) @ refined


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


# --------------------------------------------------------------- plain grids
@pytest.mark.parametrize('H,W,h,w,B,t,window,k', [
    (20, 20, 14, 14, 1, 0.02, 5, 20),
    (14, 22, 10, 15, 2, 1.0, 7, 60),
    (17, 12, 12, 8, 3, 0.02, 7, 20),
    (16, 16, 10, 10, 2, 1.0, 5, 60),
    (11, 19, 7, 13, 3, 1.0, 5, 20),
])
def test_defaults_equal_official(H, W, h, w, B, t, window, k):
    torch.manual_seed(H * 31 + W)
    C = 12
    x = torch.randn(B, H * W, C)
    refined = torch.randn(B, h * w, 7)
    res = cluster_tokens(x, (H, W), cluster_grid=(h, w), iters=5, window=window,
                         temperature=t)
    c_ref = official_cluster(x, H, W, h, w, 5, window, t)
    assert rel(res.centers, c_ref) <= 1e-5
    out = reconstruct_tokens(refined, reconstruction_weights(x, res, k=k, temperature=t))
    ref = official_reconstruct(x, res.centers, refined, k, t)
    assert rel(out, ref) <= 1e-5
    # end to end against the reference's own centres (fp32 vs fp64 centres: looser)
    assert rel(out, official_reconstruct(x, c_ref, refined, k, t)) <= 1e-4


def test_corner_and_edge_candidate_counts():
    """Window 5: a corner token has 3x3 = 9 candidates, an edge token 15 (papers.md)."""
    mask = official_candidates(40, 40, 28, 28, 5)
    x = torch.randn(1, 1600, 4)
    res = cluster_tokens(x, (40, 40), cluster_grid=(28, 28), iters=1, window=5)
    counts = (res.assign[0] > 0).sum(-1)
    assert counts[0] == 9 and counts[20] == 15 and counts[20 * 40 + 20] == 25
    assert torch.equal(counts, mask.sum(-1))


@pytest.mark.parametrize('dense', [True, False])
def test_global_topk_chunked_equals_official(monkeypatch, dense):
    """Chunks of 7 tokens, dense weights or the large-grid (index, weight) form: the same
    result as the official rule (random tokens: no exact ties)."""
    torch.manual_seed(3)
    x = torch.randn(2, 18 * 18, 8)
    refined = torch.randn(2, 12 * 12, 5)
    res = cluster_tokens(x, (18, 18), cluster_grid=(12, 12), iters=3, window=5, temperature=1.0)
    ref = official_reconstruct(x, res.centers, refined, 20, 1.0)
    monkeypatch.setattr(reconstruction_module, '_CHUNK_ELEMENTS', 2 * 144 * 7)
    if not dense:
        monkeypatch.setattr(reconstruction_module, '_DENSE_ELEMENTS', 0)
    w = reconstruction_weights(x, res, k=20)
    assert w.form == ('dense' if dense else 'topk')
    assert rel(reconstruct_tokens(refined, w), ref) <= 1e-5
    # nearest centre: the argmin of the distance, computed here
    d = ((x[:, :, None] - res.centers[:, None]) ** 2).sum(-1)
    assert torch.equal(w.nearest(), d.argmin(-1))


def _empty_cluster_tokens():
    """2x2 cells of 2x2 tokens, all 4 centres candidates of every token (window 3). Cells
    0, 1, 2 hold copies of a, b, c; cell 3 two copies of a and two of b, so its pooled
    centre (a + b) / 2 is so far from every token that it receives no weight at all."""
    a, b, c = torch.full((4,), 30.), torch.full((4,), -20.), torch.full((4,), -100.)
    grid = torch.empty(4, 4, 4)
    grid[:2, :2], grid[:2, 2:], grid[2:, :2] = a, b, c
    grid[2, 2], grid[2, 3], grid[3, 2], grid[3, 3] = a, b, a, b
    return grid.reshape(1, 16, 4)


def test_empty_cluster_becomes_zero_or_keeps_its_centre():
    x = _empty_cluster_tokens()
    ref = official_cluster(x, 4, 4, 2, 2, 5, 3, 1.0)
    assert torch.equal(ref[0, 3], torch.zeros(4, dtype=torch.float64))
    res = cluster_tokens(x, (4, 4), cluster_grid=(2, 2), iters=5, window=3, temperature=1.0)
    torch.testing.assert_close(res.centers.double(), ref)
    # former option: the empty cluster keeps its pooled centre (a + b) / 2
    keep = cluster_tokens(x, (4, 4), cluster_grid=(2, 2), iters=5, window=3, temperature=1.0,
                          empty_cluster='keep')
    torch.testing.assert_close(keep.centers[0, 3], torch.full((4,), 5.))
    torch.testing.assert_close(keep.centers[0, :3], res.centers[0, :3])


def test_shifted_window_option_departs_at_the_border_only():
    """'shifted' differs from 'cut' exactly for the tokens whose window the border cuts."""
    mask = official_candidates(40, 40, 28, 28, 5)
    x = torch.randn(1, 1600, 4)
    res = cluster_tokens(x, (40, 40), cluster_grid=(28, 28), iters=1, window=5,
                         candidate_window='shifted')
    counts = (res.assign[0] > 0).sum(-1)
    assert bool((counts == 25).all())
    cut = mask.sum(-1) < 25
    # independent count: cell within 2 of the border on either axis
    cells = torch.arange(40) * 28 // 40
    near = (cells < 2) | (cells > 25)
    assert torch.equal(cut.reshape(40, 40), near[:, None] | near[None, :])


# ------------------------------------------------------- per partition (Swin)
def official_partitions(x, ws, grid, iters, window, t, k, refined_fn):
    """Zero-pad (B, H, W, C) to multiples of ws, run the official layers per window."""
    B, H, W, C = x.shape
    Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws
    padded = torch.zeros(B, Hp, Wp, C, dtype=torch.float64)
    padded[:, :H, :W] = x.double()
    wins = padded.reshape(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    wins = wins.reshape(-1, ws * ws, C)
    c = official_cluster(wins, ws, ws, grid, grid, iters, window, t)
    out = official_reconstruct(wins, c, refined_fn(c), k, t)
    out = out.reshape(B, Hp // ws, Wp // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return c, out.reshape(B, Hp, Wp, C)[:, :H, :W]


@pytest.mark.parametrize('B,H,W,ws,clusters,window,t,k,dense', [
    (1, 20, 27, 12, 64, 7, 0.05, 10, True),   # Swin-L COCO panoptic: 12x12 -> 8x8, window 7
    (1, 20, 27, 12, 64, 7, 0.05, 10, False),  # the same, large-grid form of the weights
    (2, 15, 13, 7, 25, 5, 1.0, 20, True),     # ViTDet-style windows, padded
    (3, 12, 12, 12, 36, 5, 0.02, 20, True),
])
def test_partition_defaults_equal_official(monkeypatch, B, H, W, ws, clusters, window, t, k,
                                           dense):
    """Zero-padded windows hold equal centres that tie with the k-th: all are kept."""
    if not dense:
        monkeypatch.setattr(reconstruction_module, '_DENSE_ELEMENTS', 0)
        monkeypatch.setattr(reconstruction_module, '_CHUNK_ELEMENTS', 64 * 50)
    torch.manual_seed(B * 7 + H)
    C = 8
    x = torch.randn(B, H, W, C)
    s = ExpediteSettings(alpha=1, num_clusters=clusters, iters=5, window=window,
                         temperature=t, k=k)
    pc = cluster_partitions(x, ws, s)
    assert pc.weights.form == ('dense' if dense else 'topk')
    g = pc.cluster_grid[0]

    def refine(c):  # any fixed map of the centres stands in for the later blocks
        return torch.tanh(c) * 2 + 1

    c_ref, out_ref = official_partitions(x, ws, g, 5, window, t, k, refine)
    assert rel(pc.centers, c_ref) <= 1e-5
    out = reconstruct_partitions(refine(pc.centers), pc)
    assert rel(out, out_ref) <= 1e-5


# ------------------------------------------- options through registered backbones
def test_options_thread_through_registered_backbones():
    """The option names reach the core from a config's ``expedite`` dict: mmseg's ViT
    (the former rules give local weights over shifted windows) and mmdet's Swin (the
    bias resize changes the clustered stage only)."""
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    from mmwinwin.layers.expedite.plugin import PREVIOUS_LOCAL
    from test_expedite_mmseg import IMG, expedited, segmenter_cfg

    x = torch.randn(1, 3, IMG, IMG)  # 4x4 tokens
    with DefaultScope.overwrite_default_scope('mmseg'):
        for options, form, cut in [({}, 'dense', True), (PREVIOUS_LOCAL, 'local', False)]:
            torch.manual_seed(0)
            m = SEG_MODELS.build(expedited(segmenter_cfg(), alpha=1, cluster_grid=(3, 3),
                                           window=3, k=4, **options)).eval()
            with torch.no_grad():
                _, w = m.backbone.forward_expedited(x, reconstruct=False)
            assert w.form == form and (w.plan.valid is not None) == cut
    swin = dict(embed_dims=32, depths=[2, 2, 4, 2], num_heads=[2, 2, 4, 4], window_size=6,
                out_indices=(0, 1, 2, 3))
    img = torch.randn(1, 3, 200, 232)
    outs = []
    with DefaultScope.overwrite_default_scope('mmdet'):
        for resize in ('bilinear', 'bicubic-aligned'):
            torch.manual_seed(0)
            m = DET_MODELS.build(dict(type='ExpeditedSwinTransformer', **swin, expedite=dict(
                alpha=6, num_clusters=16, window=3, temperature=0.05, k=4,
                bias_resize=resize)))
            m.eval()
            gen = torch.Generator().manual_seed(1)
            with torch.no_grad():  # mmdet initialises the bias tables to zero
                for name, p in m.named_parameters():
                    if name.endswith('relative_position_bias_table'):
                        p.copy_(torch.randn(p.shape, generator=gen))
            with torch.no_grad():
                outs.append(m(img))
    torch.testing.assert_close(outs[0][1], outs[1][1])
    assert not torch.allclose(outs[0][2], outs[1][2])
