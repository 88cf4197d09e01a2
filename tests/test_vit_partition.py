"""Window partition and the ViTDet-style windowed RoPE ViT (pure PyTorch core)."""
import pytest
import torch
import torch.nn.functional as F

from mmwinwin.layers import (RoPEVisionTransformer, ViTDetVisionTransformer, grid_positions,
                             partition_key_mask, partition_tokens, unpartition_tokens)

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2)


@pytest.mark.parametrize('hw', [(8, 8), (7, 5), (9, 13), (3, 3)])
def test_partition_roundtrip_and_padding(hw):
    torch.manual_seed(0)
    x = torch.randn(2, *hw, 6)
    win, padded = partition_tokens(x, 4)
    assert padded == (-(-hw[0] // 4) * 4, -(-hw[1] // 4) * 4)
    assert win.shape == (2 * padded[0] // 4 * padded[1] // 4, 16, 6)
    assert torch.equal(unpartition_tokens(win, 4, padded, hw), x)
    # window (0, 0) of batch 0 holds the top-left 4x4 tokens (zero padded)
    ref = F.pad(x[0], (0, 0, 0, padded[1] - hw[1], 0, padded[0] - hw[0]))[:4, :4].reshape(16, 6)
    assert torch.equal(win[0], ref)
    mask = partition_key_mask(hw, 4, batch_size=2)
    if hw[0] % 4 == 0 and hw[1] % 4 == 0:
        assert mask is None
    else:
        assert mask.shape == (win.shape[0], 1, 1, 16)
        assert int(mask.sum()) == 2 * hw[0] * hw[1]  # exactly the valid tokens


def test_bad_window_args():
    with pytest.raises(ValueError, match='partition_size'):
        partition_tokens(torch.zeros(1, 4, 4, 2), 0)
    with pytest.raises(ValueError, match='B, H, W, C'):
        partition_tokens(torch.zeros(4, 4, 2), 2)
    with pytest.raises(ValueError, match='with_cls_token'):
        ViTDetVisionTransformer(ARCH, with_cls_token=True)


def _reference_windowed(vit: RoPEVisionTransformer, img: torch.Tensor, ws: int, glob) -> torch.Tensor:
    """Independent computation: every window's valid tokens run alone through the block."""
    tokens, hw = vit.patch_embed(img)
    H, W = hw
    pos = grid_positions(H, W)
    x = tokens
    for i, blk in enumerate(vit.blocks):
        if i in glob:
            x = blk(x, pos)
            continue
        out = torch.empty_like(x)
        for y0 in range(0, H, ws):
            for x0 in range(0, W, ws):
                idx = torch.tensor([y * W + xx for y in range(y0, min(y0 + ws, H))
                                    for xx in range(x0, min(x0 + ws, W))])
                out[:, idx] = blk(x[:, idx], pos[idx])
        x = out
    x = vit.norm(x)
    return x.transpose(1, 2).reshape(x.shape[0], -1, H, W)


@pytest.mark.parametrize('img_hw', [(64, 64), (80, 48), (72, 104)])
def test_windowed_vit_matches_per_window_reference(img_hw):
    """Token grids 4x4, 5x3 and 5x7 (5 and 7 are not multiples of the window 4)."""
    torch.manual_seed(0)
    vit = ViTDetVisionTransformer(ARCH, partition_size=4, global_indices=[2]).eval()
    img = torch.randn(2, 3, *img_hw)
    with torch.no_grad():
        out = vit(img)[0]
        ref = _reference_windowed(vit, img, 4, {2})
    assert out.shape == (2, 32, -(-img_hw[0] // 16), -(-img_hw[1] // 16))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_all_global_equals_plain_vit_and_keys_unchanged():
    torch.manual_seed(0)
    plain = RoPEVisionTransformer(ARCH).eval()
    win = ViTDetVisionTransformer(ARCH, partition_size=2, global_indices=range(4)).eval()
    assert set(win.state_dict()) == set(plain.state_dict())
    win.load_state_dict(plain.state_dict())
    img = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(win(img)[0], plain(img)[0])
        # a window covering the whole grid is global attention too
        win.global_indices = ()
        win.partition_size = 16
        torch.testing.assert_close(win(img)[0], plain(img)[0], atol=1e-5, rtol=1e-5)


def test_default_global_indices_and_grad():
    vit = ViTDetVisionTransformer(dict(embed_dims=32, num_layers=12, num_heads=2))
    assert vit.global_indices == (2, 5, 8, 11)
    vit = ViTDetVisionTransformer(ARCH, partition_size=3, global_indices=[-1])
    assert vit.global_indices == (3,)
    img = torch.randn(1, 3, 40, 56, requires_grad=True)
    vit(img)[0].sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()


def test_partition_size_is_named_apart_from_winwin_windows():
    """ViTDet's attention partitions are ``partition_size``; the former name ``window_size``
    (which Win-Win uses for its training windows) still builds, with a FutureWarning (shown
    to users by default; a DeprecationWarning from library code is hidden), and a
    conflicting pair is refused."""
    import warnings

    from mmwinwin.registry import MODELS
    arch = dict(embed_dims=32, num_layers=4, num_heads=2)
    assert ViTDetVisionTransformer(arch).partition_size == 14  # ViTDet's default
    with pytest.warns(FutureWarning, match=r'window_size is now partition_size.*write '
                                           r'partition_size=6\.') as record:
        old = ViTDetVisionTransformer(arch, window_size=6)
    assert not any(issubclass(r.category, DeprecationWarning) for r in record)
    assert old.partition_size == 6 and not hasattr(old, 'window_size')
    with pytest.warns(FutureWarning, match='window_size is now partition_size'):  # from a config
        assert MODELS.build(dict(type='RoPEViTDet', arch=arch, window_size=6)).partition_size == 6
    with warnings.catch_warnings():  # the new name: no warning
        warnings.simplefilter('error')
        assert ViTDetVisionTransformer(arch, partition_size=6).partition_size == 6
    with pytest.raises(ValueError, match='partition_size=4 and its former name window_size=6'):
        ViTDetVisionTransformer(arch, partition_size=4, window_size=6)
    with pytest.raises(ValueError, match='partition_size must be a positive int'):
        ViTDetVisionTransformer(arch, partition_size=True)
