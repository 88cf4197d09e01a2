"""2D axial rotary position embedding (RoPE) for vision transformers.

Each attention head's channels are split in two halves: the first half is rotated
by the token's row (y) coordinate, the second by its column (x) coordinate. Within
a half of ``d`` channels, pair ``i`` turns at frequency ``1 / base ** (2 i / d)``.
Because a rotation by ``p_q`` on queries and ``p_k`` on keys leaves only
``p_q - p_k`` in their dot product, attention depends on relative positions only:
this is what lets Win-Win train on windows and test on the whole image, and lets
Expedite give clusters fractional positions.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ['RoPE2D', 'grid_positions']


def grid_positions(height: int, width: int, device: torch.device | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer (y, x) coordinates of a ``height x width`` token grid, row-major.

    Returns a ``(height * width, 2)`` tensor.
    """
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([yy.reshape(-1), xx.reshape(-1)], dim=-1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


class RoPE2D(nn.Module):
    """Rotates query/key features by their 2D token positions.

    Args:
        head_dim: channels per attention head; must be divisible by 4
            (two axes, each rotated in channel pairs).
        base: frequency base; the Win-Win paper uses 100.
    """

    def __init__(self, head_dim: int, base: float = 100.0) -> None:
        super().__init__()
        if head_dim % 4 != 0:
            raise ValueError(
                f'RoPE2D needs a head dimension divisible by 4 (y and x halves, '
                f'rotated in pairs), got {head_dim}. Choose embed_dims / num_heads '
                f'as a multiple of 4.')
        if base <= 0:
            raise ValueError(f'RoPE2D base must be positive, got {base}.')
        self.head_dim = head_dim
        self.base = float(base)
        axis_dim = head_dim // 2
        inv_freq = 1.0 / (base ** (torch.arange(0, axis_dim, 2, dtype=torch.float32) / axis_dim))
        self.register_buffer('inv_freq', inv_freq, persistent=False)

    def _cos_sin(self, coord: torch.Tensor,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        angles = coord.to(dtype).unsqueeze(-1) * self.inv_freq.to(dtype)  # (..., N, axis_dim/2)
        angles = torch.cat([angles, angles], dim=-1)  # (..., N, axis_dim)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Apply the rotation.

        Args:
            x: ``(B, heads, N, head_dim)`` queries or keys.
            pos: ``(B, N, 2)`` or ``(N, 2)`` (y, x) positions, integer or fractional.
        """
        if pos.shape[-1] != 2 or pos.shape[-2] != x.shape[-2]:
            raise ValueError(
                f'RoPE2D expects positions of shape (B, N, 2) or (N, 2) with N = '
                f'{x.shape[-2]} tokens, got {tuple(pos.shape)}.')
        if pos.dim() == 3:
            pos = pos.unsqueeze(1)  # broadcast over heads
        x_y, x_x = x.chunk(2, dim=-1)
        # rotate in float32 at least (bf16 / fp16 inputs under autocast), float64 as is
        dtype = torch.promote_types(x.dtype, torch.float32)
        out = []
        for part, coord in ((x_y, pos[..., 0]), (x_x, pos[..., 1])):
            cos, sin = self._cos_sin(coord, dtype)
            rotated = part.to(dtype) * cos + _rotate_half(part.to(dtype)) * sin
            out.append(rotated.to(x.dtype))
        return torch.cat(out, dim=-1)

    def extra_repr(self) -> str:
        return f'head_dim={self.head_dim}, base={self.base}'
