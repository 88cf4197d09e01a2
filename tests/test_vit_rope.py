"""2D RoPE: matches a complex-number formulation, and attention depends on relative
positions only."""
import math

import pytest
import torch

from mmwinwin.layers import Block, RoPE2D, RoPEVisionTransformer, grid_positions


def complex_rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Independent reference: each axis half is a vector of complex numbers
    (first quarter = real, second quarter = imaginary), multiplied by e^{i p w_j}."""
    d = x.shape[-1] // 2
    outs = []
    for axis, part in enumerate((x[..., :d], x[..., d:])):
        half = d // 2
        z = torch.complex(part[..., :half].double(), part[..., half:].double())
        freqs = torch.tensor([1.0 / base ** (2 * j / d) for j in range(half)], dtype=torch.float64)
        z = z * torch.polar(torch.ones_like(freqs), pos[..., axis:axis + 1].double() * freqs)
        outs.append(torch.cat([z.real, z.imag], dim=-1))
    return torch.cat(outs, dim=-1).float()


def test_rope_matches_complex_rotation():
    torch.manual_seed(0)
    rope = RoPE2D(head_dim=16, base=100.0)
    x = torch.randn(2, 3, 10, 16)
    pos = torch.rand(2, 10, 2) * 40  # fractional positions too
    expected = complex_rope(x, pos.unsqueeze(1), 100.0)
    torch.testing.assert_close(rope(x, pos), expected, atol=1e-5, rtol=1e-5)


def test_rope_scores_depend_on_offsets_only():
    torch.manual_seed(0)
    rope = RoPE2D(head_dim=32, base=100.0)
    q, k = torch.randn(1, 2, 6, 32), torch.randn(1, 2, 6, 32)
    pos = torch.randint(0, 30, (6, 2)).float()
    scores = rope(q, pos) @ rope(k, pos).transpose(-1, -2)
    shifted = pos + torch.tensor([17.0, -5.0])
    scores_shifted = rope(q, shifted) @ rope(k, shifted).transpose(-1, -2)
    torch.testing.assert_close(scores, scores_shifted, atol=1e-4, rtol=1e-4)


def test_attention_block_invariant_to_global_shift():
    torch.manual_seed(0)
    block = Block(dim=32, num_heads=2, rope=RoPE2D(16)).eval()
    x = torch.randn(2, 12, 32)
    pos = grid_positions(3, 4)
    out = block(x, pos)
    torch.testing.assert_close(block(x, pos + torch.tensor([7.0, 11.0])), out, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(block(x, pos.flip(0)), out, atol=1e-3)  # positions matter


def test_window_tokens_equal_cropped_image():
    """Backbone on one window's tokens (full-image positions) == backbone on that
    window cropped as its own image. (Exact only without a cls token: the cls token is
    not rotated, so its interaction with patches sees absolute positions.)"""
    torch.manual_seed(0)
    vit = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=3, num_heads=2),
                                patch_size=8).eval()
    img = torch.randn(1, 3, 64, 96)  # 8 x 12 tokens
    y0, x0, h, w = 2, 5, 4, 3        # window in tokens
    tokens, pos, grid = vit.embed_image(img)
    idx = torch.tensor([(y0 + i) * grid[1] + (x0 + j) for i in range(h) for j in range(w)])
    win_out = vit.forward_tokens(tokens[:, idx], pos[idx], grid)[0]
    crop = img[:, :, y0 * 8:(y0 + h) * 8, x0 * 8:(x0 + w) * 8]
    crop_out = vit(crop)[0].flatten(2).transpose(1, 2)
    torch.testing.assert_close(win_out, crop_out, atol=1e-5, rtol=1e-5)


def test_rope_rejects_bad_head_dim_and_positions():
    with pytest.raises(ValueError, match='divisible by 4'):
        RoPE2D(head_dim=6)
    rope = RoPE2D(8)
    with pytest.raises(ValueError, match='positions of shape'):
        rope(torch.randn(1, 1, 5, 8), torch.zeros(4, 2))


def test_frequencies_follow_paper():
    rope = RoPE2D(head_dim=64, base=100.0)
    d = 32
    expected = torch.tensor([1 / 100.0 ** (2 * i / d) for i in range(d // 2)])
    torch.testing.assert_close(rope.inv_freq, expected)
    assert math.isclose(float(rope.inv_freq[0]), 1.0)
