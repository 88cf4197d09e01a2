"""Expedite's clustering / reconstruction layers against a dense reference."""
import pytest
import torch
import torch.nn.functional as F

from mmwinwin.layers import (candidate_index, cluster_tokens, grid_positions, reconstruct_map,
                             reconstruct_tokens, reconstruction_weights, resolve_cluster_grid)


# ------------------------------------------------------------- dense reference
def dense_candidate_mask(H, W, h, w, window):
    """(N, M) bool: cell of centre m within the token's window, shifted inwards at
    the border (written independently of the library's index tables)."""
    mask = torch.zeros(H * W, h * w, dtype=torch.bool)
    kh, kw = min(window, h), min(window, w)
    for y in range(H):
        for x in range(W):
            cy, cx = (y * h) // H, (x * w) // W
            y0 = min(max(cy - window // 2, 0), h - kh)
            x0 = min(max(cx - window // 2, 0), w - kw)
            for i in range(y0, y0 + kh):
                for j in range(x0, x0 + kw):
                    mask[y * W + x, i * w + j] = True
    return mask


def dense_cluster(x, H, W, h, w, iters, window, t, pos=None):
    x = x.double()
    B, N, C = x.shape
    mask = dense_candidate_mask(H, W, h, w, window)
    c = F.adaptive_avg_pool2d(x.transpose(1, 2).reshape(B, C, H, W), (h, w))
    c = c.flatten(2).transpose(1, 2)
    A = None
    for _ in range(iters):
        D = ((x[:, :, None] - c[:, None]) ** 2).sum(-1)  # (B, N, M)
        logits = (-t * D).masked_fill(~mask, float('-inf'))
        A = logits.softmax(-1)
        c = torch.einsum('bnm,bnc->bmc', A, x) / A.sum(1)[..., None]
    cpos = None
    if pos is not None and A is not None:
        pos = pos.double().expand(B, N, 2)
        cpos = torch.einsum('bnm,bnc->bmc', A, pos) / A.sum(1)[..., None]
    return c, cpos, mask


def dense_reconstruct(x, c, refined, mask, k, t):
    x, c, refined = x.double(), c.double(), refined.double()
    D = ((x[:, :, None] - c[:, None]) ** 2).sum(-1).masked_fill(~mask, float('inf'))
    dk, idx = D.topk(k, dim=-1, largest=False)
    wk = torch.exp(-t * (dk - dk[..., :1]))
    wk = wk / wk.norm(dim=-1, keepdim=True)
    W = torch.zeros_like(D).scatter_(2, idx, wk)
    return W @ refined


# ------------------------------------------------------------------ identity
def test_identity_clusters_equal_tokens():
    torch.manual_seed(0)
    x = torch.randn(2, 6 * 9, 8)
    res = cluster_tokens(x, (6, 9), cluster_grid=(6, 9), iters=3, window=1, temperature=0.5,
                         pos=grid_positions(6, 9))
    torch.testing.assert_close(res.centers, x)
    torch.testing.assert_close(res.pos, grid_positions(6, 9).float().expand(2, -1, -1))
    w = reconstruction_weights(x, res, k=1)
    torch.testing.assert_close(reconstruct_tokens(res.centers, w), x)
    # a different refined tensor is copied through token by token
    y = torch.randn(2, 54, 5)
    torch.testing.assert_close(reconstruct_tokens(y, w), y)


# ----------------------------------------------------------- dense reference
@pytest.mark.parametrize('H,W,h,w,window,B', [
    (8, 8, 5, 5, 3, 1), (7, 12, 4, 7, 3, 2), (10, 6, 7, 4, 5, 3), (9, 16, 5, 11, 5, 2),
    (5, 5, 2, 3, 5, 2)])
def test_local_equals_dense(H, W, h, w, window, B):
    """The former local operators, kept as named options (shifted windows, local top-k,
    empty clusters keep their centre), against a dense re-statement of them."""
    torch.manual_seed(H * 100 + W)
    C = 6
    x = torch.randn(B, H * W, C)
    pos = grid_positions(H, W).float()
    t = 0.3
    res = cluster_tokens(x, (H, W), cluster_grid=(h, w), iters=4, window=window, temperature=t,
                         pos=pos, candidate_window='shifted', empty_cluster='keep')
    c_ref, p_ref, mask = dense_cluster(x, H, W, h, w, 4, window, t, pos)
    torch.testing.assert_close(res.centers.double(), c_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(res.pos.double(), p_ref, rtol=1e-4, atol=1e-4)
    # candidate tables agree with the dense mask
    idx = candidate_index((H, W), (h, w), window)
    dense_from_idx = torch.zeros_like(mask).scatter_(1, idx, True)
    assert torch.equal(dense_from_idx, mask)
    k = min(4, idx.shape[1])
    refined = torch.randn(B, h * w, 3)
    w_ = reconstruction_weights(x, res, k=k, temperature=t, topk='local')
    out = reconstruct_tokens(refined, w_)
    ref = dense_reconstruct(x, res.centers, refined, mask, k, t)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    # map form
    out_map = reconstruct_map(refined.transpose(1, 2).reshape(B, 3, h, w), w_)
    torch.testing.assert_close(out_map, out.transpose(1, 2).reshape(B, 3, H, W))


def test_rows_l2_normalised_and_underflow_safe():
    torch.manual_seed(1)
    x = torch.randn(1, 64, 4) * 100  # huge distances: exp(-t D) would underflow
    res = cluster_tokens(x, (8, 8), (4, 4), iters=2, window=3, temperature=1.0)
    w = reconstruction_weights(x, res, k=5)
    assert torch.isfinite(w.weight).all()
    torch.testing.assert_close(w.weight.norm(dim=-1), torch.ones(1, 64))
    assert ((w.weight > 0).sum(-1) <= 5).all()
    assert torch.isfinite(res.centers).all()


def test_num_clusters_follows_aspect_ratio():
    assert resolve_cluster_grid((40, 40), num_clusters=784) == (28, 28)
    h, w = resolve_cluster_grid((32, 64), num_clusters=512)
    assert (h, w) == (16, 32)
    x = torch.randn(1, 12 * 24, 4)
    res = cluster_tokens(x, (12, 24), num_clusters=50, iters=1)
    assert res.cluster_grid == (5, 10) and res.centers.shape == (1, 50, 4)


def test_autocast_bf16_and_half_inputs():
    torch.manual_seed(2)
    x = (torch.randn(2, 100, 16) * 50).to(torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        res = cluster_tokens(x, (10, 10), (6, 6), iters=5, window=5, temperature=0.02)
        w = reconstruction_weights(x, res, k=20)
        out = reconstruct_tokens(res.centers, w)
    assert res.centers.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    ref = cluster_tokens(x.float(), (10, 10), (6, 6), iters=5, window=5, temperature=0.02)
    torch.testing.assert_close(res.centers.float(), ref.centers, rtol=2e-2, atol=0.5)
    xh = x.half()
    resh = cluster_tokens(xh, (10, 10), (6, 6), iters=5, window=5, temperature=0.02)
    assert resh.centers.dtype == torch.float16 and torch.isfinite(resh.centers).all()


def test_gradient_flows_to_tokens():
    x = torch.randn(1, 36, 4, requires_grad=True)
    res = cluster_tokens(x, (6, 6), (3, 3), iters=2, window=3)
    res.centers.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_hard_assignment_in_range():
    x = torch.randn(2, 80, 4)
    res = cluster_tokens(x, (8, 10), (4, 5), iters=2, window=3)
    a = res.hard_assignment()
    assert a.shape == (2, 80) and a.min() >= 0 and a.max() < 20
    res0 = cluster_tokens(x, (8, 10), (4, 5), iters=0, window=3)
    assert res0.hard_assignment().shape == (2, 80)


# --------------------------------------------------------------- bad input
def test_bad_inputs():
    x = torch.randn(1, 16, 4)
    with pytest.raises(ValueError, match='larger than the token grid'):
        cluster_tokens(x, (4, 4), cluster_grid=(5, 4))
    with pytest.raises(ValueError, match='does not match'):
        cluster_tokens(x, (4, 5), cluster_grid=(2, 2))
    with pytest.raises(ValueError, match='odd'):
        cluster_tokens(x, (4, 4), cluster_grid=(2, 2), window=4)
    with pytest.raises(ValueError, match='temperature'):
        cluster_tokens(x, (4, 4), cluster_grid=(2, 2), temperature=0)
    with pytest.raises(ValueError, match='exactly one'):
        cluster_tokens(x, (4, 4))
    res = cluster_tokens(x, (4, 4), cluster_grid=(2, 2), window=1)
    with pytest.raises(ValueError, match='larger than the number of clusters'):
        reconstruction_weights(x, res, k=5)
    with pytest.raises(ValueError, match='local candidate'):
        reconstruction_weights(x, res, k=2, topk='local')
    with pytest.raises(ValueError, match="topk must be 'global'"):
        reconstruction_weights(x, res, k=1, topk='nearest')
    with pytest.raises(ValueError, match="candidate_window must be 'cut'"):
        cluster_tokens(x, (4, 4), cluster_grid=(2, 2), candidate_window='clamp')
    with pytest.raises(ValueError, match="empty_cluster must be 'zero'"):
        cluster_tokens(x, (4, 4), cluster_grid=(2, 2), empty_cluster='drop')
    with pytest.raises(ValueError, match='refined clusters'):
        reconstruct_tokens(torch.randn(1, 3, 4), reconstruction_weights(x, res, k=1))


@pytest.mark.parametrize('iters,candidate_window,topk', [(0, 'cut', 'global'),
                                                         (2, 'cut', 'local'),
                                                         (2, 'shifted', 'global')])
def test_empty_batch_gives_empty_results(iters, candidate_window, topk):
    """B = 0 (e.g. no images left after a filter): empty results of the right shapes,
    as for any other batch size, through clustering and reconstruction."""
    torch.manual_seed(0)
    x, pos = torch.randn(2, 64, 8), torch.rand(64, 2) * 8
    for batch in (x[:0], x):  # the empty batch, then the good input
        res = cluster_tokens(batch, (8, 8), cluster_grid=(4, 4), iters=iters, window=3, pos=pos,
                             candidate_window=candidate_window, empty_cluster='keep')
        B = batch.shape[0]
        assert res.centers.shape == (B, 16, 8) and res.pos.shape == (B, 16, 2)
        assert res.hard_assignment().shape == (B, 64)
        assert res.assign is None if iters == 0 else res.assign.shape == (B, 64, 9)
        w = reconstruction_weights(batch, res, k=4, topk=topk)
        assert reconstruct_tokens(res.centers, w).shape == (B, 64, 8)
        grid = res.centers.transpose(1, 2).reshape(B, 8, 4, 4)
        assert reconstruct_map(grid, w).shape == (B, 8, 8, 8)
        assert w.nearest().shape == (B, 64)
    # the good input: a batch of two clusters each image as on its own
    one = cluster_tokens(x[1:], (8, 8), cluster_grid=(4, 4), iters=iters, window=3, pos=pos,
                         candidate_window=candidate_window, empty_cluster='keep')
    torch.testing.assert_close(res.centers[1:], one.centers)
