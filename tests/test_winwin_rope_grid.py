"""One full token grid for Win-Win windows, canvases and the whole test image.

The grid-normalised RoPE families place a token at patch ``(r, c)`` of an image by its
index *and the image's full token grid* ``(H, W)`` (tokens):

* DINOv3: ``y = 2 (r + 0.5) / H - 1``, ``x = 2 (c + 0.5) / W - 1`` (patch centres in
  ``[-1, 1]``);
* EVA-02: ``y = r * R_h / H``, ``x = c * R_w / W`` (``R`` the pre-training grid,
  ``rope_ref_grid``).

At test time mmseg's whole-image inference hands the backbone the test image unpadded
(no ``test_cfg`` padding, batch size 1); the patch embedding pads it to whole patches, so
``(H, W) = (ceil(h / p), ceil(w / p))`` for an ``h x w`` pixel image: 5 x 7 for 70 x 100
pixels at patch 16. Training must use the same ``(H, W)``, whichever way the windows reach
the backbone: (a) gathered from the whole image, padded by the data preprocessor to the
batch (here to 96 x 128 pixels, a 6 x 8 grid), or (b) read from a canvas holding only the
windows' pixels (whose own size says nothing of the image's). The windows lie on whole
patches inside the image (a 4 x 6 grid). The old code gave (a) the padded batch grid and
(b) the whole patches (4 x 6); a random tiny DINOv3 then differed by ~1e-4.

Checks, with the real transform and packers and the models' shared window step
(``window_features``, as the Win-Win segmentors and detectors call it):

* the coordinates handed to the RoPE for the window tokens, in (a), (b) and in the real
  whole-image forward ``backbone(img)`` (c), all equal the formulas above with ``(5, 7)``;
* the window tokens' output features of (a) and (b) equal those of the test path's
  tokens: the whole image's patch embedding, positions and grid (``embed_image``, as
  ``forward`` uses them) restricted to the same window tokens (a plain ViT's blocks attend
  over all kept tokens, so the same tokens in give the same features out), to 1e-5.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmwinwin.datasets.winwin import WinWinPackSegInputs, WinWinWindows
from mmwinwin.models.vit import RoPEViT
from mmwinwin.layers.winwin import gather_tokens, rope_grid_size, window_token_index
from mmwinwin.models.winwin.window_batches import canvas_batch, window_features

P = 16
H_PX, W_PX = 70, 100  # not multiples of the patch size
TEST_GRID = (5, 7)  # ceil(70 / 16), ceil(100 / 16): the whole-image test forward's grid
ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)


def _family_coords(rope_type, rows, cols, grid):
    """The coordinates a token at patch (r, c) gets, from the family's definition."""
    r, c = rows.double(), cols.double()
    if rope_type == 'dinov3':
        return torch.stack([2 * (r + 0.5) / grid[0] - 1, 2 * (c + 0.5) / grid[1] - 1], -1)
    ref = (16, 16)
    return torch.stack([r * ref[0] / grid[0], c * ref[1] / grid[1]], -1)


def _backbone(rope_type):
    torch.manual_seed(0)
    extra = dict(rope_ref_grid=(16, 16)) if rope_type == 'eva02' else {}
    net = RoPEViT(arch=ARCH, patch_size=P, rope_type=rope_type, out_indices=(0, 1), **extra)
    with torch.no_grad():  # sharp attention, so that coordinates matter (random init is flat)
        for blk in net.blocks:
            blk.attn.qkv.weight.normal_(0, 0.5)
    return net.eval()


def _results(seed=0):
    img = np.random.default_rng(seed).integers(0, 256, (H_PX, W_PX, 3), dtype=np.uint8)
    res = dict(img=img, img_shape=(H_PX, W_PX), ori_shape=(H_PX, W_PX), img_path='x.png',
               scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
               gt_seg_map=np.zeros((H_PX, W_PX), np.uint8))
    return WinWinWindows(num_windows=2, window_size=2, patch_size=P, seed=seed)(res)


def _record_rope_coords(net):
    """Wrap ``net.rope_positions`` to keep every coordinate tensor it returns."""
    seen, inner = [], net.rope_positions

    def spy(pos, grid_size=None):
        out = inner(pos, grid_size)
        seen.append(out.detach().reshape(-1, 2).double())
        return out
    net.rope_positions = spy
    return seen


def _paths(net, res):
    """Window-token features and RoPE coordinates of (a) the window path, (b) the canvas
    path, (c) the test path."""
    seen = _record_rope_coords(net)
    whole = WinWinPackSegInputs()(dict(res))
    canvas = WinWinPackSegInputs(pixels='windows')(dict(res))
    out = {}
    with torch.no_grad():
        # (a) whole image, padded by the training preprocessor to a 96 x 128 batch
        metas = [whole['data_samples'].metainfo]
        offsets, grids = canvas_batch(metas)
        img = whole['inputs'].float()[None]
        batch = F.pad(img, (0, 128 - W_PX, 0, 96 - H_PX))
        feats = window_features(net, batch, [metas[0]['winwin_windows']], P, None, offsets, grids)
        out['window'] = (feats, seen[-1])
        # (b) canvas of the windows' pixels
        metas = [canvas['data_samples'].metainfo]
        offsets, grids = canvas_batch(metas)
        assert offsets is not None
        feats = window_features(net, canvas['inputs'].float()[None],
                                [metas[0]['winwin_windows']], P, None, offsets, grids)
        out['canvas'] = (feats, seen[-1])
        # (c) the test path: the whole image as the test preprocessor presents it
        net(img)
        test_coords = seen[-1]
        tokens, pos, hw = net.embed_image(img)
        wins = res['winwin_windows']
        idx = window_token_index(wins, hw)
        ref = net.forward_tokens(gather_tokens(tokens, idx[None]), pos[idx], hw)
    return out, (ref, test_coords, hw, idx)


def _window_maps(feats, wins, level):
    """Sample 0's per-window (C, h, w) maps of one level -> (N, C) tokens in the order of
    window_token_index."""
    return torch.cat([feats[0][j][level].flatten(1).t() for j in range(len(wins))])


@pytest.mark.parametrize('rope_type', ['dinov3', 'eva02'])
def test_window_and_canvas_tokens_get_the_test_coordinates_and_features(rope_type):
    net = _backbone(rope_type)
    res = _results()
    assert res['winwin_grid'] == TEST_GRID
    wins = res['winwin_windows']
    for top, left, h, w in wins:  # on whole patches inside the image (4 x 6)
        assert top + h <= H_PX // P and left + w <= W_PX // P
    out, (ref, test_coords, hw, idx) = _paths(net, res)
    assert hw == TEST_GRID
    rows, cols = idx // TEST_GRID[1], idx % TEST_GRID[1]
    want = _family_coords(rope_type, rows, cols, TEST_GRID)
    # the real whole-image forward's coordinates at the window tokens
    torch.testing.assert_close(test_coords[idx], want, rtol=0, atol=1e-6)
    for name in ('window', 'canvas'):
        feats, coords = out[name]
        torch.testing.assert_close(coords, want, rtol=0, atol=1e-6, msg=name)
        for level in range(len(ref)):
            got = _window_maps(feats, wins, level)
            diff = (got - ref[level][0]).abs().max().item()
            assert diff <= 1e-5, f'{rope_type} {name} path, level {level}: {diff:.2e}'


def test_rope_grid_size_and_transform_grid():
    assert rope_grid_size((70, 100), 16) == (5, 7)
    assert rope_grid_size((64, 96), 16) == (4, 6)
    assert rope_grid_size((70, 100), 16, 32) == (6, 8)  # mmdet's pad_size_divisor=32
    with pytest.raises(ValueError, match='multiple of the patch size'):
        rope_grid_size((70, 100), 16, 24)
    img = np.zeros((70, 100, 3), np.uint8)
    res = WinWinWindows(window_size=2, patch_size=P, grid_divisor=32, seed=0)(dict(img=img))
    assert res['winwin_grid'] == (6, 8)
    # random tokens: drawn on whole patches (4 x 6), recorded row-major in the full grid
    rnd = WinWinWindows(window_size=2, patch_size=P, mode='random_tokens', seed=0)
    idx = torch.tensor(rnd(dict(img=img))['winwin_token_index'])
    assert rnd(dict(img=img))['winwin_grid'] == (5, 7)
    assert len(idx) == 8 and len(set(idx.tolist())) == 8
    assert bool(((idx // 7) < 4).all()) and bool(((idx % 7) < 6).all())
