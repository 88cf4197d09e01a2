"""ViTDet-style attention inside Win-Win windows (issue 14 item 2, backbone part).

A ViTDet backbone trained on Win-Win windows must attend, in its windowed blocks, inside
attention partitions of ``partition_size`` laid out *within each Win-Win window* (from the
window's top-left corner, a partial partition padded and masked), and in its global blocks
across all windows of the image. The references here are written independently of the
code under test: partitions are cut by slicing the window grids (no ``partition_tokens``),
or expressed as one dense "same window and same partition" attention mask over all tokens.
"""
import pytest
import torch

from mmwinwin.layers import (RoPEVisionTransformer, ViTDetVisionTransformer, embed_windows,
                             grid_positions)

P = 4       # patch size (pixels)
WS = 3      # attention partition (tokens)
GRID = (12, 13)  # full image token grid
# window 0: 5x5 (not a multiple of WS: padded), window 1: 6x6 (a multiple), window 2: 4x2
WINDOWS = [(0, 0, 5, 5), (6, 5, 6, 6), (1, 8, 4, 2)]


def _vitdet(**kw):
    torch.manual_seed(0)
    cfg = dict(arch=dict(embed_dims=32, num_layers=4, num_heads=2), patch_size=P,
               partition_size=WS, global_indices=(1, 3), out_indices=(0, 1, 3))
    cfg.update(kw)
    return ViTDetVisionTransformer(**cfg).eval()


def _image(batch=2):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, GRID[0] * P, GRID[1] * P, generator=g)


def _window_tokens(vit, img, windows=WINDOWS):
    tok, pos = embed_windows(vit.patch_embed, img, [windows] * img.shape[0], P)
    return tok, pos


def _slices(windows):
    """Per window: (start, end) of its tokens in the concatenation, and its (h, w)."""
    out, start = [], 0
    for _, _, h, w in windows:
        out.append((start, start + h * w, h, w))
        start += h * w
    return out


def _partition_groups(windows, ws):
    """Token index lists (into the concatenated window tokens), one per attention partition,
    cut by slicing each window's local grid from its top-left corner."""
    groups = []
    for start, _, h, w in _slices(windows):
        local = torch.arange(h * w).view(h, w) + start
        for r in range(0, h, ws):
            for c in range(0, w, ws):
                groups.append(local[r:r + ws, c:c + ws].reshape(-1))
    return groups


def _dense_partition_mask(windows, ws):
    """(K, K) bool: True where query and key lie in the same window and the same partition."""
    K = sum(h * w for _, _, h, w in windows)
    label = torch.empty(K, dtype=torch.long)
    for g, idx in enumerate(_partition_groups(windows, ws)):
        label[idx] = g
    return label[:, None] == label[None, :]


def _reference_forward(vit, tok, pos, windows, ws):
    """The whole forward written out: global blocks over all tokens, windowed blocks under
    the dense same-partition mask; outputs per out index (final norm after the last)."""
    mask = _dense_partition_mask(windows, ws)[None, None]
    x, outs = tok, []
    for i, blk in enumerate(vit.blocks):
        x = blk(x, pos) if i in vit.global_indices else blk(x, pos, 0, mask)
        if i in vit.out_indices:
            outs.append(vit.norm(x) if i == vit.num_layers - 1 else x)
    return outs


def test_windowed_block_equals_attention_per_sliced_partition():
    vit = _vitdet()
    tok, pos = _window_tokens(vit, _image())
    out = vit.run_windowed_block(0, tok, pos, [(h, w) for _, _, h, w in WINDOWS])
    ref = torch.empty_like(tok)
    blk = vit.blocks[0]
    for idx in _partition_groups(WINDOWS, WS):  # only the valid tokens: no padding at all
        ref[:, idx] = blk(tok[:, idx], pos[:, idx])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # and not the block over all window tokens (which is what a plain ViT does)
    assert not torch.allclose(out, blk(tok, pos), atol=1e-3)


def test_forward_tokens_with_window_shapes_equals_reference_loop():
    vit = _vitdet()
    tok, pos = _window_tokens(vit, _image())
    shapes = [(h, w) for _, _, h, w in WINDOWS]
    outs = vit.forward_tokens(tok, pos, GRID, window_shapes=shapes)
    ref = _reference_forward(vit, tok, pos, WINDOWS, WS)
    assert len(outs) == len(ref) == 3
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r, atol=1e-5, rtol=1e-5)


def test_global_blocks_see_the_other_windows():
    """Changing window 1's pixels changes window 0's output after a global block only."""
    vit = _vitdet(out_indices=(0, 1))
    img = _image(1)
    other = img.clone()
    t, l, h, w = WINDOWS[1]
    other[:, :, t * P:(t + h) * P, l * P:(l + w) * P] += 1.0
    shapes = [(h, w) for _, _, h, w in WINDOWS]
    n0 = WINDOWS[0][2] * WINDOWS[0][3]
    a = vit.forward_tokens(*_window_tokens(vit, img), GRID, window_shapes=shapes)
    b = vit.forward_tokens(*_window_tokens(vit, other), GRID, window_shapes=shapes)
    torch.testing.assert_close(a[0][:, :n0], b[0][:, :n0])  # block 0: windowed
    assert not torch.allclose(a[1][:, :n0], b[1][:, :n0])   # block 1: global


def test_one_window_covering_the_image_is_the_whole_image_forward():
    vit = _vitdet()
    img = _image()
    whole = vit(img)  # (B, C, H, W) maps
    tokens, hw = vit.patch_embed(img)
    pos = grid_positions(*hw)
    as_window = vit.forward_tokens(tokens, pos, hw, window_shapes=[hw])
    no_shapes = vit.forward_tokens(tokens, pos, hw)
    ref = _reference_forward(vit, tokens, pos, [(0, 0, *hw)], WS)
    for w, a, n, r in zip(whole, as_window, no_shapes, ref):
        flat = w.flatten(2).transpose(1, 2)
        torch.testing.assert_close(flat, r, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(n, r, atol=1e-5, rtol=1e-5)
    # embed_windows of that single window gives the same tokens and positions
    tok_w, pos_w = _window_tokens(vit, img, [(0, 0, *hw)])
    torch.testing.assert_close(tok_w, tokens)
    torch.testing.assert_close(pos_w[0], pos.to(pos_w.dtype))


def test_positions_stay_full_image():
    """Attention uses the tokens' full-image positions: shifting all of them by one offset
    changes nothing (RoPE sees offsets only), scrambling one window's changes its output."""
    vit = _vitdet()
    tok, pos = _window_tokens(vit, _image())
    shapes = [(h, w) for _, _, h, w in WINDOWS]
    a = vit.forward_tokens(tok, pos, GRID, window_shapes=shapes)
    b = vit.forward_tokens(tok, pos + torch.tensor([2.0, 3.0]), GRID, window_shapes=shapes)
    for x, y in zip(a, b):  # RoPE: only offsets between tokens matter
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)
    swapped = pos.clone()
    swapped[:, :25] = pos[:, :25].flip(1)  # scramble window 0's positions
    c = vit.forward_tokens(tok, swapped, GRID, window_shapes=shapes)
    assert not torch.allclose(a[0][:, :25], c[0][:, :25], atol=1e-4)


def test_gradients_flow_through_window_tokens():
    vit = _vitdet().train()
    img = _image().requires_grad_(True)
    tok, pos = _window_tokens(vit, img)
    outs = vit.forward_tokens(tok, pos, GRID, window_shapes=[(h, w) for _, _, h, w in WINDOWS])
    sum(o.square().mean() for o in outs).backward()
    for name, p in vit.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name.startswith(('blocks.', 'patch_embed.')) and name.endswith('weight'):
            assert p.grad.abs().sum() > 0, name
    # pixels outside every window get no gradient, pixels inside do
    g = img.grad.abs().sum(1)
    t, l, h, w = WINDOWS[0]
    assert g[:, t * P:(t + h) * P, l * P:(l + w) * P].gt(0).all()
    assert g[:, 11 * P:, :4 * P].eq(0).all()  # rows 11, cols 0-3 are in no window


def test_plain_vit_checks_and_ignores_window_shapes():
    torch.manual_seed(0)
    vit = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                                patch_size=P).eval()
    tok, pos = _window_tokens(vit, _image())
    shapes = [(h, w) for _, _, h, w in WINDOWS]
    a = vit.forward_tokens(tok, pos, GRID, window_shapes=shapes)[-1]
    b = vit.forward_tokens(tok, pos, GRID)[-1]
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='hold 67 tokens but 69'):
        vit.forward_tokens(tok, pos, GRID, window_shapes=shapes[:-1] + [(3, 2)])


@pytest.mark.parametrize('shapes, error, match', [
    ([(5, 5), (6, 6), (4, 3)], ValueError, 'hold 73 tokens but 69'),
    ([(5.0, 5), (6, 6), (4, 2)], TypeError, 'not an int'),
    ([(True, 25), (6, 6), (4, 2)], TypeError, 'not an int'),
    ([(5, 5, 1), (6, 6), (4, 2)], TypeError, r'not an \(h, w\) pair'),
    ([], ValueError, 'empty'),
    ((25, 36, 8), TypeError, r'not an \(h, w\) pair'),
    ([(0, 5), (6, 6), (4, 2)], ValueError, 'side < 1'),
])
def test_bad_window_shapes_are_clear_errors(shapes, error, match):
    vit = _vitdet()
    tok, pos = _window_tokens(vit, _image(1))
    with pytest.raises(error, match=match):
        vit.forward_tokens(tok, pos, GRID, window_shapes=shapes)


def test_tokens_that_form_no_grid_need_window_shapes():
    vit = _vitdet()
    tok, pos = _window_tokens(vit, _image(1))
    with pytest.raises(ValueError, match='window_shapes'):
        vit.forward_tokens(tok, pos, GRID)
    with pytest.raises(ValueError, match='register tokens'):
        _vitdet(num_reg_tokens=2)


@pytest.mark.parametrize('context_pool', [None, 5])
def test_winwin_segmentor_on_vitdet_attends_per_window(context_pool):
    """Win-Win segmentation on a RoPEViTDet backbone: the window features are those of the
    reference loop (context tokens, when used, form one more grid)."""
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS

    import mmwinwin  # noqa: F401  (registers the models)
    from mmwinwin.layers import context_grid, pool_context_tokens

    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(
        type='WinWinEncoderDecoder', context_tokens=None if context_pool is None else
        dict(pool=context_pool),
        backbone=dict(type='RoPEViTDet', arch=dict(embed_dims=32, num_layers=4, num_heads=2),
                      patch_size=P, partition_size=WS, global_indices=(1, 3), out_indices=(3,)),
        decode_head=dict(type='FCNHead', in_channels=32, in_index=-1, channels=8, num_convs=1,
                         num_classes=3, norm_cfg=None),
        train_cfg=dict(), test_cfg=dict(mode='whole'))).eval()
    img = _image()
    with torch.no_grad():
        feats = model._window_feats(img, [WINDOWS, WINDOWS])
        vit = model.backbone
        tok, pos = _window_tokens(vit, img)
        windows = list(WINDOWS)
        pos = pos.float()
        if context_pool is not None:
            full, hw = vit.patch_embed(img)
            ctx, cpos = pool_context_tokens(full, hw, context_pool)
            tok = torch.cat([tok, ctx], 1)
            pos = torch.cat([pos, cpos[None].expand(2, -1, -1)], 1)
            windows.append((0, 0, *context_grid(GRID, context_pool)))
        ref = _reference_forward(vit, tok, pos, windows, WS)[-1]
    for (start, end, h, w), per_window in zip(_slices(WINDOWS), zip(*feats)):
        got = torch.stack([f[-1] for f in per_window])  # (B, C, h, w)
        want = ref[:, start:end].transpose(1, 2).reshape(2, -1, h, w)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
