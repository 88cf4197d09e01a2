"""Win-Win window core (pure PyTorch): sampling properties, token gathering, crops."""
import itertools

import pytest
import torch

from mmwinwin.layers import (RoPEVisionTransformer, check_windows, crop_windows, embed_windows,
                             gather_tokens, max_fitting_size, resolve_window_size,
                             sample_grid_size, sample_random_tokens, sample_windows,
                             scatter_tokens, window_grids, window_pixel_boxes, window_positions,
                             window_token_index, window_token_mask)


def _overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize('grid,n,size', [((45, 80), 2, 22), ((45, 44), 2, 22), ((20, 20), 4, 10),
                                         ((12, 30), 3, 5), ((7, 9), 1, 7)])
def test_windows_count_size_inside_no_overlap(grid, n, size):
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        wins = sample_windows(grid, n, size, generator=g)
        assert len(wins) == n
        for t, l, h, w in wins:
            assert (h, w) == (size, size)
            assert all(isinstance(v, int) for v in (t, l, h, w))  # patch-grid aligned
            assert 0 <= t and t + h <= grid[0] and 0 <= l and l + w <= grid[1]
        for a, b in itertools.combinations(wins, 2):
            assert not _overlap(a, b)
        check_windows(wins, grid)


def test_deterministic_under_seed():
    a = [sample_windows((45, 80), 2, 22, generator=torch.Generator().manual_seed(3))
         for _ in range(2)]
    assert a[0] == a[1]
    b = sample_windows((45, 80), 2, 22, generator=torch.Generator().manual_seed(4))
    c = [sample_windows((45, 80), 2, 22, generator=torch.Generator().manual_seed(s))
         for s in range(10)]
    assert len({tuple(x) for x in c}) > 1 and isinstance(b, list)


def test_uniform_over_placements_single_window():
    # one 3x3 window in a 6x8 grid: 4*6 = 24 top-left placements, each ~1/24
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4, 6)
    draws = 12000
    for _ in range(draws):
        (t, l, _, _), = sample_windows((6, 8), 1, 3, generator=g)
        counts[t, l] += 1
    expected = draws / 24
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 50  # 23 dof: p(chi2 > 50) ~ 1e-3


def test_uniform_over_valid_pairs():
    # Exact distribution of the first window's top-left under "uniform over valid
    # ordered pairs", computed by enumeration, against the sampler's frequencies.
    grid, s = (5, 7), 2
    places = [(t, l, s, s) for t in range(grid[0] - s + 1) for l in range(grid[1] - s + 1)]
    exact = torch.zeros(grid[0] - s + 1, grid[1] - s + 1)
    for a in places:
        for b in places:
            if not _overlap(a, b):
                exact[a[0], a[1]] += 1
    exact /= exact.sum()
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros_like(exact)
    draws = 6000
    cover = torch.zeros(grid)
    for _ in range(draws):
        wins = sample_windows(grid, 2, s, generator=g)
        counts[wins[0][0], wins[0][1]] += 1
        cover += window_token_mask(wins, grid).float()
    assert (counts / draws - exact).abs().max() < 0.02
    # coverage is symmetric under flips of the grid (no bias to a side)
    cov = cover / draws
    assert torch.allclose(cov, cov.flip(0), atol=0.04)
    assert torch.allclose(cov, cov.flip(1), atol=0.04)
    assert (cov > 0).all()


def test_clear_error_and_shrink_to_fit():
    with pytest.raises(ValueError, match='do not fit.*largest side that fits is 5'):
        sample_windows((10, 10), 2, 6)
    wins = sample_windows((10, 10), 2, 6, shrink_to_fit=True, generator=torch.Generator())
    assert [w[2] for w in wins] == [5, 5]
    with pytest.raises(ValueError, match='not even 1x1'):
        sample_windows((1, 1), 2, 1, shrink_to_fit=True)
    assert max_fitting_size((45, 80), 2) == 40
    with pytest.raises(ValueError, match='exactly one'):
        resolve_window_size(4, 10)


def test_tight_fit_is_bounded_and_valid():
    # 6 windows of 5 in a 10x15 grid: only the exact packing fits
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        wins = sample_windows((10, 15), 6, 5, generator=g)
        check_windows(wins, (10, 15))
        assert window_token_mask(wins, (10, 15)).all()


def test_size_range_and_budget():
    g = torch.Generator().manual_seed(0)
    sizes = {sample_windows((40, 40), 2, (3, 6), generator=g)[0][2] for _ in range(100)}
    assert sizes == {3, 4, 5, 6}
    assert resolve_window_size(token_budget=968, num_windows=2) == 22
    assert sample_grid_size((720, 1280), 16) == (45, 80)


def test_random_tokens_same_budget():
    idx = sample_random_tokens((45, 80), 968, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (968,) and len(set(idx.tolist())) == 968
    assert idx.min() >= 0 and idx.max() < 3600
    with pytest.raises(ValueError, match='Cannot keep'):
        sample_random_tokens((4, 4), 17)


def test_index_positions_grids_roundtrip():
    grid = (6, 9)
    wins = [(1, 2, 3, 3), (3, 6, 2, 2)]
    idx = window_token_index(wins, grid)
    pos = window_positions(wins)
    assert torch.equal(idx, (pos[:, 0] * grid[1] + pos[:, 1]).long())
    full = torch.arange(54.).reshape(1, 54, 1).repeat(2, 1, 3)
    tok = gather_tokens(full, idx)
    grids = window_grids(tok, wins)
    ref = torch.arange(54.).reshape(6, 9)
    assert torch.equal(grids[0][0, 0], ref[1:4, 2:5])
    assert torch.equal(grids[1][1, 2], ref[3:5, 6:8])
    back = scatter_tokens(tok, idx, 54, fill=-1.)
    mask = window_token_mask(wins, grid).reshape(-1)
    assert torch.equal(back[:, mask], full[:, mask]) and (back[:, ~mask] == -1).all()
    # batched per-sample indices
    idx2 = torch.stack([idx, idx.flip(0)])
    assert torch.equal(gather_tokens(full, idx2)[1], full[1, idx.flip(0)])


def test_window_grid_and_label_crop_line_up_pixel_for_pixel():
    p = 4
    H, W = 24, 40
    # label encodes position: value = patch row * 100 + patch col
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    label = (yy // p) * 100 + (xx // p)
    grid = sample_grid_size((H, W), p)
    wins = sample_windows(grid, 2, 3, generator=torch.Generator().manual_seed(5))
    pos = window_positions(wins)
    feats = window_grids(pos[None], wins)  # channel 0 = y, channel 1 = x of each token
    for (t, l, h, w), f, crop in zip(wins, feats, crop_windows(label, wins, p)):
        assert crop.shape == (h * p, w * p)
        up = f[0].repeat_interleave(p, 1).repeat_interleave(p, 2).long()
        assert torch.equal(up[0] * 100 + up[1], crop)
    assert window_pixel_boxes([(1, 2, 3, 3)], 16) == [(16, 32, 48, 48)]


def test_backbone_on_window_tokens_equals_gathered_full_embedding():
    torch.manual_seed(0)
    vit = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                                patch_size=8, out_indices=(0, 1)).eval()
    with torch.no_grad():  # sharper attention than the 0.02-std init, so positions show
        for blk in vit.blocks:
            blk.attn.qkv.weight.mul_(20)
    img = torch.randn(2, 3, 48, 64)
    wins = [[(0, 0, 2, 2), (3, 4, 2, 2)], [(1, 5, 2, 2), (4, 1, 2, 2)]]
    tok_w, pos_w = embed_windows(vit.patch_embed, img, wins, 8)
    full, full_pos, grid = vit.embed_image(img)
    idx = torch.stack([window_token_index(w, grid) for w in wins])
    tok_g = gather_tokens(full, idx)
    pos_g = torch.stack([full_pos[i] for i in idx])
    assert torch.allclose(tok_w, tok_g, atol=1e-5)
    assert torch.equal(pos_w, pos_g)
    out_w = vit.forward_tokens(tok_w, pos_w, grid)
    out_g = vit.forward_tokens(tok_g, pos_g, grid)
    for a, b in zip(out_w, out_g):
        assert torch.allclose(a, b, atol=1e-5)
    # relative positions matter: moving the second window changes the features
    moved = pos_w.clone()
    moved[:, 4:, 1] += 1
    out_shift = vit.forward_tokens(tok_w, moved, grid)
    assert not torch.allclose(out_shift[-1], out_w[-1], atol=1e-3)
    with pytest.raises(ValueError, match='same window sizes'):
        embed_windows(vit.patch_embed, img, [[(0, 0, 2, 2)], [(0, 0, 3, 3)]], 8)
