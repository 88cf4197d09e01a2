"""RoPE conventions of pretrained ViT families, and presets named after released models.

The plain RoPE of mmwinwin (``rope.py``, ``rope_type='axial'``) rotates by integer token
coordinates, each axis in its own half of a head's channels. Released backbones use
other conventions; a checkpoint only works with the convention it was trained with.

DINOv3 (``rope_type='dinov3'``, Simeoni et al. 2025; timm ``RotaryEmbeddingDinoV3``):

* coordinates are patch centres normalised to ``[-1, 1]`` per axis by the token grid
  of the *whole* image: ``c = 2 (i + 0.5) / size - 1`` (:func:`dinov3_coordinates`).
  A Win-Win window's tokens therefore carry coordinates normalised by the full image,
  and Expedite's cluster centres the weighted mean of their tokens' coordinates (the
  map is affine, so the mean commutes with it);
* a head of ``D`` channels has ``D / 4`` periods ``base ** (4 j / D)`` (``base`` = 100),
  angle ``2 pi c / period``; the ``D / 2`` angles are ``[y periods | x periods]`` and
  channel ``k`` is rotated together with channel ``k + D / 2`` ("rotate half").

EVA-02 (``rope_type='eva02'``, Fang et al. 2023; timm ``RotaryEmbeddingCat``):

* coordinates are token indices rescaled to the pre-training grid ``ref`` (16 x 16 for
  224 / 14): ``c = i * ref / size`` per axis, ``size`` the *whole* image's token grid
  (:func:`eva02_coordinates`), so again a Win-Win window keeps full-image coordinates;
* a head of ``D`` channels has ``D / 4`` frequencies ``base ** (-j / (D / 4))``
  (``base`` = 10000); the ``D / 2`` angles are ``[y | x]`` and channel ``2k`` is rotated
  together with channel ``2k + 1`` (interleaved pairs).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ['ROPE_TYPES', 'DINOv3RoPE', 'dinov3_coordinates', 'dinov3_periods', 'EVA02RoPE',
           'eva02_coordinates', 'FAMILY_PRESETS', 'resolve_family_preset']

ROPE_TYPES = ('axial', 'dinov3', 'eva02')


def dinov3_periods(head_dim: int, base: float = 100.0) -> torch.Tensor:
    """The ``head_dim / 4`` RoPE periods of DINOv3: ``base ** (4 j / head_dim)``."""
    j = torch.arange(head_dim // 4, dtype=torch.float32)
    return base ** (2.0 * j / (head_dim // 2))


def dinov3_coordinates(pos: torch.Tensor, grid_size: Sequence[int]) -> torch.Tensor:
    """Token-grid ``(y, x)`` positions (integer or fractional) -> DINOv3 coordinates in
    ``[-1, 1]``, normalised per axis by the full image's token grid ``(H, W)``."""
    if grid_size is None:
        raise ValueError('DINOv3 RoPE normalises positions by the full image token grid: '
                         'pass grid_size=(H, W) (in tokens) to forward_tokens.')
    size = torch.tensor([float(grid_size[0]), float(grid_size[1])], device=pos.device)
    return (pos.float() + 0.5) / size * 2.0 - 1.0


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def _check_rope_args(family: str, head_dim: int, base: float) -> None:
    if head_dim % 4 != 0:
        raise ValueError(f'{family} RoPE needs a head dimension divisible by 4, got '
                         f'{head_dim}. Choose embed_dims / num_heads as a multiple of 4.')
    if base <= 0:
        raise ValueError(f'{family} RoPE base must be positive, got {base}.')


class DINOv3RoPE(nn.Module):
    """DINOv3's 2D RoPE on normalised coordinates (see the module docstring).

    Args:
        head_dim: channels per attention head, divisible by 4.
        base: period base (DINOv3: 100).
    """

    def __init__(self, head_dim: int, base: float = 100.0) -> None:
        super().__init__()
        _check_rope_args('DINOv3', head_dim, base)
        self.head_dim = head_dim
        self.base = float(base)
        self.register_buffer('periods', dinov3_periods(head_dim, base), persistent=False)

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``(B, heads, N, head_dim)`` by ``coords`` ``(B, N, 2)`` or
        ``(N, 2)``: normalised ``(y, x)`` from :func:`dinov3_coordinates`."""
        if coords.shape[-1] != 2 or coords.shape[-2] != x.shape[-2]:
            raise ValueError(
                f'DINOv3 RoPE expects coordinates of shape (B, N, 2) or (N, 2) with N = '
                f'{x.shape[-2]} tokens, got {tuple(coords.shape)}.')
        if coords.dim() == 3:
            coords = coords.unsqueeze(1)  # broadcast over heads
        angles = 2 * math.pi * coords.float().unsqueeze(-1) / self.periods  # (..., N, 2, D/4)
        angles = angles.flatten(-2)  # (..., N, D/2): [y periods | x periods]
        angles = torch.cat([angles, angles], dim=-1)
        xf = x.float()
        return (xf * angles.cos() + _rotate_half(xf) * angles.sin()).to(x.dtype)

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, base={self.base}, convention=dinov3'


def eva02_coordinates(pos: torch.Tensor, grid_size: Sequence[int],
                      ref_grid: Sequence[int]) -> torch.Tensor:
    """Token-grid ``(y, x)`` positions -> EVA-02 coordinates ``pos * ref / size`` per axis,
    ``size`` the full image's token grid and ``ref`` the pre-training grid."""
    if grid_size is None:
        raise ValueError('EVA-02 RoPE rescales positions by the full image token grid: '
                         'pass grid_size=(H, W) (in tokens) to forward_tokens.')
    scale = torch.tensor([float(ref_grid[0]) / float(grid_size[0]),
                          float(ref_grid[1]) / float(grid_size[1])], device=pos.device)
    return pos.float() * scale


class EVA02RoPE(nn.Module):
    """EVA-02's 2D RoPE (see the module docstring): interleaved channel pairs.

    Args:
        head_dim: channels per attention head, divisible by 4.
        base: frequency base (EVA-02: 10000).
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        _check_rope_args('EVA-02', head_dim, base)
        self.head_dim = head_dim
        self.base = float(base)
        n = head_dim // 4
        self.register_buffer('inv_freq', 1.0 / base ** (torch.arange(n, dtype=torch.float32) / n),
                             persistent=False)

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``(B, heads, N, head_dim)`` by ``coords`` ``(B, N, 2)`` or ``(N, 2)``
        from :func:`eva02_coordinates`."""
        if coords.shape[-1] != 2 or coords.shape[-2] != x.shape[-2]:
            raise ValueError(
                f'EVA-02 RoPE expects coordinates of shape (B, N, 2) or (N, 2) with N = '
                f'{x.shape[-2]} tokens, got {tuple(coords.shape)}.')
        if coords.dim() == 3:
            coords = coords.unsqueeze(1)
        angles = (coords.float().unsqueeze(-1) * self.inv_freq).flatten(-2)  # (..., N, D/2)
        angles = angles.repeat_interleave(2, dim=-1)
        xf = x.float()
        pairs = xf.unflatten(-1, (-1, 2))
        rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
        return (xf * angles.cos() + rotated * angles.sin()).to(x.dtype)

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, base={self.base}, convention=eva02'


_DINOV3 = dict(patch_size=16, rope_type='dinov3', rope_base=100.0, num_reg_tokens=4,
               with_cls_token=True, layer_scale_init=1e-5, qkv_bias=True, mask_k_bias=True,
               norm_eps=1e-5)

# Presets named after released models: the architecture (``arch``) and the options that
# define the family. Licence and source are listed in the README's backbone table.
FAMILY_PRESETS: dict[str, dict] = {
    'dinov3-vits16': dict(arch=dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
                          **_DINOV3),
    'dinov3-vitb16': dict(arch=dict(embed_dims=768, num_layers=12, num_heads=12,
                                    mlp_ratio=4.0), **_DINOV3),
    'dinov3-vitl16': dict(arch=dict(embed_dims=1024, num_layers=24, num_heads=16,
                                    mlp_ratio=4.0), **_DINOV3),
    'dinov3-vits16plus': dict(arch=dict(embed_dims=384, num_layers=12, num_heads=6,
                                        mlp_ratio=4.0), mlp_type='swiglu', swiglu_align_to=8,
                              **_DINOV3),
    'dinov3-vith16plus': dict(arch=dict(embed_dims=1280, num_layers=32, num_heads=20,
                                        mlp_ratio=4.0), mlp_type='swiglu', swiglu_align_to=8,
                              **_DINOV3),
}


# EVA-02 (MIM pre-trained at 224 / 14; MIT licence): learned absolute position embedding
# of the 16 x 16 pre-training grid beside RoPE, SwiGLU MLP (with a LayerNorm inside, "sub-LN",
# from B up), key bias held at zero.
_EVA02 = dict(patch_size=14, rope_type='eva02', rope_base=10000.0, rope_ref_grid=(16, 16),
              with_cls_token=True, use_abs_pos_embed=True, img_size=224, qkv_bias=True,
              mask_k_bias=True, norm_eps=1e-6, pos_embed_antialias=True)
FAMILY_PRESETS.update({
    'eva02-vitt14': dict(arch=dict(embed_dims=192, num_layers=12, num_heads=3,
                                   mlp_ratio=4 * 2 / 3), mlp_type='swiglu', **_EVA02),
    'eva02-vits14': dict(arch=dict(embed_dims=384, num_layers=12, num_heads=6,
                                   mlp_ratio=4 * 2 / 3), mlp_type='swiglu', **_EVA02),
    'eva02-vitb14': dict(arch=dict(embed_dims=768, num_layers=12, num_heads=12,
                                   mlp_ratio=4 * 2 / 3), mlp_type='swiglu_norm', **_EVA02),
    'eva02-vitl14': dict(arch=dict(embed_dims=1024, num_layers=24, num_heads=16,
                                   mlp_ratio=4 * 2 / 3), mlp_type='swiglu_norm', **_EVA02),
})


def resolve_family_preset(name: str) -> dict | None:
    """The preset dict for a released model's name (case-insensitive), else ``None``."""
    if not isinstance(name, str):
        return None
    preset = FAMILY_PRESETS.get(name.lower())
    return None if preset is None else {k: (dict(v) if isinstance(v, dict) else v)
                                        for k, v in preset.items()}
