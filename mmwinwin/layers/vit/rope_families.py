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

RoPE-ViT (``rope_type='naver_axial'`` / ``'naver_mixed'``, Heo et al., ECCV 2024, naver-ai;
timm ``vit_*_patch16_rope_*``):

* coordinates are integer token indices of the *whole* image, ``(x, y)`` = column, row
  (no normalisation, no offset), so a Win-Win window's tokens keep their full-image
  indices and Expedite's clusters their weighted-mean (fractional) indices;
* RoPE-Axial: a head of ``D`` channels has ``D / 4`` frequencies ``base ** (-4 j / D)``
  (``base`` = 100); the ``D / 2`` angles are ``[x | y]`` and channel ``2k`` is rotated
  together with ``2k + 1`` (interleaved pairs, the complex view of the paper's code);
* RoPE-Mixed: every block and head learns its own ``D / 2`` frequency pairs
  ``(f_x, f_y)`` (initialised with magnitudes ``base ** (-4 j / D)``, ``base`` = 10, turned
  by a random angle per head); pair ``k`` turns by ``x f_x[k] + y f_y[k]`` -- linear in the
  coordinates, so a weighted-mean position is still well defined.

PE, Perception Encoder (``rope_type='pe'``, Bolya et al. 2025, Meta; timm ``vit_pe_*``):

* coordinates are integer token indices plus 1 when the model has a cls token (the
  unrotated cls token sits at (0, 0)): ``(x + 1, y + 1)``; the official code uses them at
  every input size; timm rescales them to the pre-training grid ``ref`` as EVA-02 does
  (``c * ref / size``), a named option here (``rope_ref_grid``);
* ``D / 4`` frequencies ``base ** (-4 j / D)`` (``base`` = 10000), angles ``[x | y]``,
  interleaved pairs, as RoPE-Axial.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ['ROPE_TYPES', 'DINOv3RoPE', 'dinov3_coordinates', 'dinov3_periods',
           'InterleavedRoPE2D', 'EVA02RoPE', 'eva02_coordinates', 'MixedRoPE2D',
           'mixed_rope_frequencies', 'pe_coordinates', 'FAMILY_PRESETS', 'resolve_family_preset']

ROPE_TYPES = ('axial', 'dinov3', 'eva02', 'naver_axial', 'naver_mixed', 'pe')


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


def _version_of(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter (nor change in place)
        return -1


def _cached_cos_sin(module: nn.Module, coords: torch.Tensor, angles_fn,
                    depends_on: tuple = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``angles_fn()``, reused while the same coordinates tensor (the
    same object, not modified in place) and unchanged ``depends_on`` tensors (learned
    frequencies) come back. Every block of a forward rotates queries and keys by the same
    positions, so the tables are computed once per forward instead of twice per block (timm
    precomputes them too); the output is the same. Angles that need gradients (RoPE-Mixed in
    training) are not kept."""
    key = (_version_of(coords), coords.device, tuple(_version_of(t) for t in depends_on))
    cache = module.__dict__.get('_cos_sin_cache')
    if cache is not None and cache[0] is coords and cache[1] == key:
        return cache[2]
    angles = angles_fn()
    out = (angles.cos(), angles.sin())
    module.__dict__['_cos_sin_cache'] = None if angles.requires_grad else (coords, key, out)
    return out


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
        c = _check_coords('DINOv3', x, coords)

        def angles_fn():
            angles = 2 * math.pi * c.float().unsqueeze(-1) / self.periods  # (..., N, 2, D/4)
            angles = angles.flatten(-2)  # (..., N, D/2): [y periods | x periods]
            return torch.cat([angles, angles], dim=-1)
        cos, sin = _cached_cos_sin(self, coords, angles_fn)
        xf = x.float()
        return (xf * cos + _rotate_half(xf) * sin).to(x.dtype)

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


def _rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs ``(2k, 2k + 1)`` of ``x`` by the angles whose
    ``cos`` / ``sin`` are given per channel (each pair's twice: ``repeat_interleave(2)``), in
    float32 at least, returned in ``x``'s dtype."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    xf = x.to(dtype)
    pairs = xf.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return (xf * cos.to(dtype) + rotated * sin.to(dtype)).to(x.dtype)


def _check_coords(family: str, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    if coords.shape[-1] != 2 or coords.shape[-2] != x.shape[-2]:
        raise ValueError(
            f'{family} RoPE expects coordinates of shape (B, N, 2) or (N, 2) with N = '
            f'{x.shape[-2]} tokens, got {tuple(coords.shape)}.')
    return coords.unsqueeze(1) if coords.dim() == 3 else coords  # broadcast over heads


class InterleavedRoPE2D(nn.Module):
    """Axial 2D RoPE on interleaved channel pairs, the layout of EVA-02, RoPE-ViT's
    RoPE-Axial and PE: ``D / 4`` frequencies ``base ** (-4 j / D)`` per axis; the
    ``D / 2`` angles are ``[first axis | second axis]`` with the axes in ``axis_order``
    (``'yx'``: EVA-02; ``'xy'``: RoPE-ViT, PE) and pair ``k`` is channels ``2k, 2k + 1``.

    Args:
        head_dim: channels per attention head, divisible by 4.
        base: frequency base.
        axis_order: which coordinate turns the first half of the pairs.
    """
    family = 'interleaved'

    def __init__(self, head_dim: int, base: float = 10000.0, axis_order: str = 'yx') -> None:
        super().__init__()
        _check_rope_args(self.family, head_dim, base)
        if axis_order not in ('yx', 'xy'):
            raise ValueError(f"axis_order must be 'yx' or 'xy', got {axis_order!r}.")
        self.head_dim = head_dim
        self.base = float(base)
        self.axis_order = axis_order
        n = head_dim // 4
        self.register_buffer('inv_freq', 1.0 / base ** (torch.arange(n, dtype=torch.float32) / n),
                             persistent=False)

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``(B, heads, N, head_dim)`` by ``(y, x)`` ``coords`` ``(B, N, 2)`` or
        ``(N, 2)`` (already in the family's convention)."""
        c = _check_coords(self.family, x, coords)

        def angles_fn():
            ordered = c.flip(-1) if self.axis_order == 'xy' else c
            angles = (ordered.float().unsqueeze(-1) * self.inv_freq).flatten(-2)  # (..., N, D/2)
            return angles.repeat_interleave(2, dim=-1)
        return _rotate_pairs(x, *_cached_cos_sin(self, coords, angles_fn))

    def extra_repr(self) -> str:
        return (f'head_dim={self.head_dim}, base={self.base}, axis_order={self.axis_order}, '
                f'convention={self.family}')


class EVA02RoPE(InterleavedRoPE2D):
    """EVA-02's 2D RoPE (see the module docstring): interleaved pairs, ``[y | x]``.

    Args:
        head_dim: channels per attention head, divisible by 4.
        base: frequency base (EVA-02: 10000).
    """
    family = 'EVA-02'

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__(head_dim, base, axis_order='yx')

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, base={self.base}, convention=eva02'


def mixed_rope_frequencies(head_dim: int, num_heads: int, base: float = 10.0,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """RoPE-Mixed's initial frequencies, ``(2, num_heads, head_dim / 2)``: ``[f_x, f_y]``.

    Per head a random angle ``a``; the first ``D / 4`` pairs point along ``a`` and the
    other ``D / 4`` along ``a + pi / 2``, each with magnitudes ``base ** (-4 j / D)``.
    """
    mag = 1.0 / base ** (torch.arange(head_dim // 4, dtype=torch.float32) * 4 / head_dim)
    angle = torch.rand(num_heads, 1, generator=generator) * 2 * math.pi
    turn = torch.cat([angle.expand(-1, head_dim // 4), (angle + math.pi / 2).expand(
        -1, head_dim // 4)], dim=-1)  # (heads, D/2)
    mag = torch.cat([mag, mag])
    return torch.stack([mag * turn.cos(), mag * turn.sin()])


class MixedRoPE2D(nn.Module):
    """RoPE-ViT's RoPE-Mixed for one block: learned frequencies ``freqs`` ``(2, heads, D/2)``
    (``[f_x, f_y]``); pair ``k`` of head ``h`` (channels ``2k, 2k + 1``) turns by
    ``x f_x[h, k] + y f_y[h, k]``.

    Args:
        head_dim: channels per attention head, divisible by 4.
        num_heads: attention heads (each has its own frequencies).
        base: magnitude base of the initial frequencies (RoPE-Mixed: 10).
    """

    def __init__(self, head_dim: int, num_heads: int, base: float = 10.0) -> None:
        super().__init__()
        _check_rope_args('RoPE-Mixed', head_dim, base)
        self.head_dim = head_dim
        self.num_heads = num_heads
        self.base = float(base)
        self.freqs = nn.Parameter(mixed_rope_frequencies(head_dim, num_heads, base))

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``(B, heads, N, head_dim)`` by integer or fractional ``(y, x)``
        token coordinates ``(B, N, 2)`` or ``(N, 2)``."""
        c = _check_coords('RoPE-Mixed', x, coords).float()
        if x.shape[-3] != self.num_heads:
            raise ValueError(f'RoPE-Mixed was built for {self.num_heads} heads, got '
                             f'{x.shape[-3]}.')

        def angles_fn():
            fx, fy = self.freqs.float()[0, :, None], self.freqs.float()[1, :, None]  # (h, 1, D/2)
            angles = c[..., 1, None] * fx + c[..., 0, None] * fy  # (..., h, N, D/2)
            return angles.repeat_interleave(2, dim=-1)
        cos, sin = _cached_cos_sin(self, coords, angles_fn, depends_on=(self.freqs,))
        return _rotate_pairs(x, cos, sin)

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, num_heads={self.num_heads}, convention=naver_mixed'


def pe_coordinates(pos: torch.Tensor, grid_size: Sequence[int] | None, offset: float,
                   ref_grid: Sequence[int] | None = None) -> torch.Tensor:
    """Token-grid ``(y, x)`` positions -> PE coordinates ``pos + offset`` (offset 1 with a
    cls token), rescaled by ``ref / size`` per axis (``size`` the full image's token grid)
    only when ``ref_grid`` is given (timm's convention, not the official one)."""
    coords = pos.float() + offset
    if ref_grid is None:
        return coords
    if grid_size is None:
        raise ValueError('PE RoPE with rope_ref_grid rescales positions by the full image token '
                         'grid: pass grid_size=(H, W) (in tokens) to forward_tokens.')
    scale = torch.tensor([float(ref_grid[0]) / float(grid_size[0]),
                          float(ref_grid[1]) / float(grid_size[1])], device=pos.device)
    return coords * scale


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


# RoPE-ViT (naver-ai, ECCV 2024; Apache-2.0): DeiT-III ViTs (cls token, layer scale, GELU MLP)
# with RoPE-Axial (base 100) or RoPE-Mixed (learned per block and head, initial base 10);
# the "-ape" variants add DeiT's absolute position embedding on the patch tokens only (not
# the cls token), resized bicubic (no antialias) as the official code does.
_NAVER = dict(patch_size=16, with_cls_token=True, layer_scale_init=1e-4, qkv_bias=True,
              norm_eps=1e-6)
_NAVER_AXIAL = dict(rope_type='naver_axial', rope_base=100.0, **_NAVER)
_NAVER_MIXED = dict(rope_type='naver_mixed', rope_base=10.0, **_NAVER)
_NAVER_APE = dict(use_abs_pos_embed=True, img_size=224, cls_pos_embed=False)
_NAVER_SIZES = {'s': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
                'b': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0),
                'l': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0)}
for _size, _arch in _NAVER_SIZES.items():
    FAMILY_PRESETS[f'naver-rope-axial-vit{_size}16'] = dict(arch=_arch, **_NAVER_AXIAL)
    FAMILY_PRESETS[f'naver-rope-mixed-vit{_size}16'] = dict(arch=_arch, **_NAVER_MIXED)
    FAMILY_PRESETS[f'naver-rope-axial-ape-vit{_size}16'] = dict(arch=_arch, **_NAVER_AXIAL,
                                                                **_NAVER_APE)
    FAMILY_PRESETS[f'naver-rope-mixed-ape-vit{_size}16'] = dict(arch=_arch, **_NAVER_MIXED,
                                                                **_NAVER_APE)

# PE, Perception Encoder (Meta, 2025; Apache-2.0): a pre-norm ("ln_pre") CLIP-style ViT with a
# cls token (not G), a learned absolute position embedding over cls + patches (resized
# bilinear, as the official code does) and PE's RoPE; no patch-embedding bias (loaded as
# zero), LayerNorm eps 1e-5. PE-Spatial has no final norm; PE-Core keeps its "ln_post" (its
# attention-pooling head and projection are dropped: the trunk's patch tokens only).
_PE = dict(rope_type='pe', rope_base=10000.0, with_cls_token=True, use_abs_pos_embed=True,
           pre_norm=True, norm_eps=1e-5, qkv_bias=True, pos_embed_interp='bilinear')
_PE_SIZES = {
    'vitt16': (dict(embed_dims=192, num_layers=12, num_heads=3, mlp_ratio=4.0), 16, {}),
    'vits16': (dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0), 16, {}),
    'vitb16': (dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0), 16, {}),
    'vitl14': (dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0), 14, {}),
    'vitg14': (dict(embed_dims=1536, num_layers=50, num_heads=16, mlp_ratio=8960 / 1536), 14,
               dict(with_cls_token=False)),
}
_PE_IMG = {'spatial': dict(vitt16=512, vits16=512, vitb16=512, vitl14=448, vitg14=448),
           'core': dict(vitt16=384, vits16=384, vitb16=224, vitl14=336, vitg14=448)}
for _kind, _sizes in _PE_IMG.items():
    for _name, _img in _sizes.items():
        _arch, _patch, _extra = _PE_SIZES[_name]
        _opts = dict(_PE, **_extra)
        if _kind == 'spatial':
            _opts['final_norm'] = False
            if _name == 'vitg14':
                _opts['layer_scale_init'] = 0.1
        FAMILY_PRESETS[f'pe-{_kind}-{_name}'] = dict(arch=_arch, patch_size=_patch,
                                                     img_size=_img, **_opts)


def resolve_family_preset(name: str) -> dict | None:
    """The preset dict for a released model's name (case-insensitive), else ``None``."""
    if not isinstance(name, str):
        return None
    preset = FAMILY_PRESETS.get(name.lower())
    return None if preset is None else {k: (dict(v) if isinstance(v, dict) else v)
                                        for k, v in preset.items()}
