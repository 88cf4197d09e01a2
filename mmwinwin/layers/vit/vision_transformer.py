"""A plain Vision Transformer whose forward takes explicit token positions.

Read top to bottom: ``PatchEmbed`` -> ``Attention`` / ``Mlp`` -> ``Block`` ->
``RoPEVisionTransformer``. Parameter names follow timm's layout
(``patch_embed.proj``, ``blocks.N.attn.qkv``, ``norm``), so timm / DeiT / MAE
checkpoints load with little conversion (see ``layers/vit/checkpoint.py``).

Positions are what make the two methods of mmwinwin possible:

* Win-Win runs the blocks on the tokens of a few windows only, each token carrying
  its (y, x) coordinate in the full image;
* Expedite runs the later blocks on clustered tokens at fractional positions.

``forward(img)`` is the ordinary whole-image path; ``forward_tokens(tokens, pos)``
runs any subset of tokens.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .block_loop import run_blocks
from .rope import RoPE2D, grid_positions
from .window_shapes import check_window_shapes
from .rope_families import (ROPE_TYPES, DINOv3RoPE, EVA02RoPE, InterleavedRoPE2D, MixedRoPE2D,
                            dinov3_coordinates, eva02_coordinates, pe_coordinates,
                            resolve_family_preset)

__all__ = ['ARCH_SETTINGS', 'PatchEmbed', 'Attention', 'Mlp', 'SwiGLUMlp', 'Block', 'DropPath',
           'LayerScale',
           'RoPEVisionTransformer', 'resolve_arch']

ARCH_SETTINGS: dict[str, dict] = {
    'tiny': dict(embed_dims=192, num_layers=12, num_heads=3, mlp_ratio=4.0),
    'small': dict(embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4.0),
    'base': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0),
    'huge': dict(embed_dims=1280, num_layers=32, num_heads=16, mlp_ratio=4.0),
}
_ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'mlp_ratio')


def resolve_arch(arch: str | dict) -> dict:
    """Turn a preset name or a dict of ``embed_dims/num_layers/num_heads[/mlp_ratio]``
    into a full setting, with a clear error for anything else."""
    if isinstance(arch, str):
        key = arch.lower()
        if key not in ARCH_SETTINGS:
            raise KeyError(f'Unknown ViT arch {arch!r}. Choose one of '
                           f'{sorted(ARCH_SETTINGS)} or pass a dict with keys {_ARCH_KEYS[:3]}.')
        return dict(ARCH_SETTINGS[key])
    if isinstance(arch, dict):
        missing = [k for k in _ARCH_KEYS[:3] if k not in arch]
        unknown = [k for k in arch if k not in _ARCH_KEYS]
        if missing or unknown:
            raise KeyError(f'A custom ViT arch dict needs keys {list(_ARCH_KEYS[:3])} '
                           f'(optionally mlp_ratio); missing {missing}, unknown {unknown}.')
        return {'mlp_ratio': 4.0, **arch}
    raise TypeError(f'arch must be a preset name or a dict, got {type(arch).__name__}.')


_FAMILY_DEFAULTS = dict(patch_size=16, rope_type='axial', rope_base=100.0, num_reg_tokens=0,
                        with_cls_token=False, layer_scale_init=None, qkv_bias=True,
                        mask_k_bias=False, norm_eps=1e-6, mlp_type='gelu',
                        use_abs_pos_embed=False, img_size=224, rope_ref_grid=None,
                        swiglu_align_to=1, pos_embed_antialias=False, final_norm=True,
                        pre_norm=False, cls_pos_embed=True, pos_embed_interp='bicubic')
POS_EMBED_INTERP = ('bicubic', 'bilinear')


def _apply_family_preset(name: str, family: dict, given: dict) -> dict:
    """The family options of preset ``name``; a given option that differs from both the
    constructor default and the preset is an error (it would not be the released model)."""
    out = {}
    for key, value in given.items():
        want = family.get(key, _FAMILY_DEFAULTS[key])
        if key == 'img_size' and value != _FAMILY_DEFAULTS[key]:
            want = value  # a fine-tuned checkpoint's size (e.g. EVA-02 at 448), not the family
        if key == 'final_norm' and value is False:
            want = value  # raw last-block tokens: the checkpoint's final norm goes unused
        if value != _FAMILY_DEFAULTS[key] and value != want:
            raise ValueError(
                f'arch={name!r} is the released model with {key}={want!r}, but {key}={value!r} '
                f'was given. Drop {key} from the config, or pass arch as a dict '
                f'(embed_dims/num_layers/num_heads) to build a custom variant.')
        out[key] = want
    return out


class PatchEmbed(nn.Module):
    """Image to patch tokens. Inputs of any size are zero-padded (right, bottom) up
    to a multiple of the patch size, so the token grid is ``ceil(H/p) x ceil(W/p)``."""

    def __init__(self, patch_size: int = 16, in_channels: int = 3, embed_dims: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if img.dim() != 4:
            raise ValueError(f'PatchEmbed expects a (B, C, H, W) image batch, got shape '
                             f'{tuple(img.shape)}.')
        if img.shape[1] != self.in_channels:
            raise ValueError(
                f'The backbone was built for {self.in_channels}-channel images but got '
                f'{img.shape[1]} channels (input shape {tuple(img.shape)}). Set '
                f'in_channels={img.shape[1]} in the backbone config or convert the images.')
        if img.numel() == 0:
            raise ValueError(f'PatchEmbed got an empty image batch (shape {tuple(img.shape)}, '
                             '0 pixels): check the image files and any crop / resize before '
                             'the model.')
        p = self.patch_size
        pad_h, pad_w = (-img.shape[2]) % p, (-img.shape[3]) % p
        if pad_h or pad_w:
            img = F.pad(img, (0, pad_w, 0, pad_h))
        x = self.proj(img)
        hw = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), hw


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class Attention(nn.Module):
    """Multi-head self-attention with optional 2D RoPE on queries and keys.

    The first ``num_prefix_tokens`` tokens (cls / register tokens) are not rotated.
    Fused attention (``F.scaled_dot_product_attention``) is always used.
    ``mask_k_bias`` keeps the key third of the qkv bias at zero (DINOv3).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, rope: nn.Module | None = None,
                 mask_k_bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'embed_dims ({dim}) must be divisible by num_heads ({num_heads}).')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rope = rope
        if mask_k_bias and qkv_bias:
            mask = torch.ones(3, dim)
            mask[1] = 0.0
            self.register_buffer('qkv_bias_mask', mask.flatten(), persistent=False)
        else:
            self.qkv_bias_mask = None

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None,
                num_prefix_tokens: int = 0, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        if self.qkv_bias_mask is not None:
            qkv = F.linear(x, self.qkv.weight, self.qkv.bias * self.qkv_bias_mask)
        else:
            qkv = self.qkv(x)
        qkv = qkv.reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.rope is not None:
            if pos is None:
                raise ValueError('This ViT uses RoPE: pass token positions to forward.')
            p = num_prefix_tokens
            q = torch.cat([q[:, :, :p], self.rope(q[:, :, p:], pos)], dim=2)
            k = torch.cat([k[:, :, :p], self.rope(k[:, :, p:], pos)], dim=2)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """Two linear layers with GELU in between."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SwiGLUMlp(nn.Module):
    """SwiGLU feed-forward (DINOv3 S+ / H+, EVA-02): ``fc2(norm(silu(fc1_g(x)) *
    fc1_x(x)))``, hidden width rounded up to a multiple of ``align_to``; ``norm`` is a
    LayerNorm with ``hidden_norm`` (EVA-02's sub-LN), else the identity."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0, align_to: int = 1,
                 hidden_norm: bool = False, norm_eps: float = 1e-6) -> None:
        super().__init__()
        hidden_dim += -hidden_dim % align_to
        self.fc1_g = nn.Linear(dim, hidden_dim)
        self.fc1_x = nn.Linear(dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim, eps=norm_eps) if hidden_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.silu(self.fc1_g(x)) * self.fc1_x(x))
        return self.drop(self.fc2(self.norm(x)))


MLP_TYPES = ('gelu', 'swiglu', 'swiglu_norm')


class LayerScale(nn.Module):
    """Per-channel learnt scale of a residual branch (CaiT; DINOv2 / DINOv3)."""

    def __init__(self, dim: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)); with
    ``layer_scale_init`` each branch is scaled per channel (``ls1`` / ``ls2``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 rope: nn.Module | None = None, norm_eps: float = 1e-6,
                 layer_scale_init: float | None = None, mask_k_bias: bool = False,
                 mlp_type: str = 'gelu', swiglu_align_to: int = 1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop, rope, mask_k_bias)
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None \
            else nn.Identity()
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        if mlp_type in ('swiglu', 'swiglu_norm'):
            self.mlp = SwiGLUMlp(dim, int(dim * mlp_ratio), drop, swiglu_align_to,
                                 hidden_norm=mlp_type == 'swiglu_norm', norm_eps=norm_eps)
        else:
            self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.ls2 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None \
            else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None,
                num_prefix_tokens: int = 0, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), pos, num_prefix_tokens,
                                                  attn_mask)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class RoPEVisionTransformer(nn.Module):
    """Plain ViT with 2D RoPE, usable on whole images or on any subset of tokens.

    Args:
        arch: preset name (``tiny``, ``small``, ``base``, ``large``, ``huge``) or a dict
            with ``embed_dims``, ``num_layers``, ``num_heads`` and optional ``mlp_ratio``;
            or a released model's name (``dinov3-vitb16``, ``eva02-vitb14``,
            ``naver-rope-mixed-vitb16``, ``pe-spatial-vitb16``, ...:
            ``rope_families.FAMILY_PRESETS``), which also sets the
            family's options (patch size, RoPE convention, register tokens, layer scale,
            qkv bias, norm eps); passing one of those with another value is an error.
        img_size: pre-training image size; only sizes the learned absolute position
            embedding (``use_abs_pos_embed=True``), which is resized to each input.
        patch_size: patch size in pixels.
        in_channels: image channels.
        out_indices: block indices whose outputs are returned (negative counts from
            the end); the last block's output gets the final norm when ``final_norm``.
        use_rope: rotate queries and keys by 2D token positions.
        rope_base: RoPE frequency base (100 in the Win-Win paper).
        use_abs_pos_embed: add a learned absolute position embedding (for comparisons;
            it does not transfer from windows to the whole image).
        with_cls_token: prepend a cls token (not rotated, not returned in outputs).
            Note: an unrotated cls token sees the patches' absolute positions, so a
            RoPE ViT is exactly translation-invariant only without it (the default).
        drop_path_rate: stochastic depth, linearly increasing over the blocks.
        with_cp: gradient checkpointing of each block, to save training memory.
        rope_type: the RoPE convention, ``'axial'`` (integer token coordinates,
            :class:`RoPE2D`), ``'dinov3'`` (coordinates normalised to [-1, 1] by the
            full image's token grid, :class:`DINOv3RoPE`), ``'eva02'`` (coordinates
            rescaled from the full grid to ``rope_ref_grid``, :class:`EVA02RoPE`),
            ``'naver_axial'`` / ``'naver_mixed'`` (RoPE-ViT's RoPE-Axial and RoPE-Mixed on
            integer coordinates; Mixed learns frequencies per block, :class:`MixedRoPE2D`)
            or ``'pe'`` (Perception Encoder: integer coordinates + 1 with a cls token);
            see ``rope_families``.
        num_reg_tokens: register ("storage") tokens after the cls token; like the cls
            token they are prefix tokens: never rotated, windowed or clustered.
        layer_scale_init: initial value of per-channel layer scale on both residual
            branches (``None``: no layer scale).
        mask_k_bias: keep the key part of the qkv bias at zero (DINOv3).
        mlp_type: ``'gelu'`` (two linear layers), ``'swiglu'`` (DINOv3 S+ / H+, EVA-02
            Ti / S) or ``'swiglu_norm'`` (with a LayerNorm inside: EVA-02 B / L).
        swiglu_align_to: round the SwiGLU hidden width up to a multiple of this
            (DINOv3: 8; EVA-02: 1).
        pos_embed_antialias: resize the absolute position embedding with antialiased
            bicubic interpolation (timm's resampling, used by the EVA-02 presets).
        rope_ref_grid: EVA-02's pre-training token grid, to which positions are rescaled
            (default ``img_size // patch_size``); for ``rope_type='pe'`` only when given
            (timm's rescaling; the official PE code uses the integer positions).
        pre_norm: a LayerNorm on the prepared tokens before the first block (PE's
            ``ln_pre``).
        cls_pos_embed: whether the absolute position embedding has an entry for the cls
            token (RoPE-ViT's "-ape" variants: patches only).
        pos_embed_interp: ``'bicubic'`` or ``'bilinear'`` (PE) resizing of the absolute
            position embedding.
    """

    def __init__(self, arch: str | dict = 'base', img_size: int | Sequence[int] = 224,
                 patch_size: int = 16, in_channels: int = 3,
                 out_indices: int | Sequence[int] = -1, qkv_bias: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 use_rope: bool = True, rope_base: float = 100.0, use_abs_pos_embed: bool = False,
                 with_cls_token: bool = False, final_norm: bool = True, with_cp: bool = False,
                 norm_eps: float = 1e-6, rope_type: str = 'axial', num_reg_tokens: int = 0,
                 layer_scale_init: float | None = None, mask_k_bias: bool = False,
                 mlp_type: str = 'gelu', rope_ref_grid: Sequence[int] | None = None,
                 swiglu_align_to: int = 1, pos_embed_antialias: bool = False,
                 pre_norm: bool = False, cls_pos_embed: bool = True,
                 pos_embed_interp: str = 'bicubic') -> None:
        super().__init__()
        family = resolve_family_preset(arch)
        if family is not None:
            given = dict(patch_size=patch_size, rope_type=rope_type, rope_base=rope_base,
                         num_reg_tokens=num_reg_tokens, with_cls_token=with_cls_token,
                         layer_scale_init=layer_scale_init, qkv_bias=qkv_bias,
                         mask_k_bias=mask_k_bias, norm_eps=norm_eps, mlp_type=mlp_type,
                         use_abs_pos_embed=use_abs_pos_embed, img_size=img_size,
                         rope_ref_grid=rope_ref_grid, swiglu_align_to=swiglu_align_to,
                         pos_embed_antialias=pos_embed_antialias, final_norm=final_norm,
                         pre_norm=pre_norm, cls_pos_embed=cls_pos_embed,
                         pos_embed_interp=pos_embed_interp)
            opts = _apply_family_preset(arch, family, given)
            arch = family['arch']
            patch_size, rope_type, rope_base = (opts[k] for k in ('patch_size', 'rope_type',
                                                                  'rope_base'))
            num_reg_tokens, with_cls_token, layer_scale_init = (
                opts[k] for k in ('num_reg_tokens', 'with_cls_token', 'layer_scale_init'))
            qkv_bias, mask_k_bias, norm_eps, mlp_type = (
                opts[k] for k in ('qkv_bias', 'mask_k_bias', 'norm_eps', 'mlp_type'))
            use_abs_pos_embed, img_size, rope_ref_grid = (
                opts[k] for k in ('use_abs_pos_embed', 'img_size', 'rope_ref_grid'))
            swiglu_align_to, pos_embed_antialias, final_norm = (
                opts[k] for k in ('swiglu_align_to', 'pos_embed_antialias', 'final_norm'))
            pre_norm, cls_pos_embed, pos_embed_interp = (
                opts[k] for k in ('pre_norm', 'cls_pos_embed', 'pos_embed_interp'))
        if mlp_type not in MLP_TYPES:
            raise ValueError(f'Unknown mlp_type {mlp_type!r}; choose one of {MLP_TYPES}.')
        if rope_type not in ROPE_TYPES:
            raise ValueError(f'Unknown rope_type {rope_type!r}; choose one of {ROPE_TYPES}.')
        if pos_embed_interp not in POS_EMBED_INTERP:
            raise ValueError(f'Unknown pos_embed_interp {pos_embed_interp!r}; choose one of '
                             f'{POS_EMBED_INTERP}.')
        if not isinstance(num_reg_tokens, int) or num_reg_tokens < 0:
            raise ValueError(f'num_reg_tokens must be a non-negative int, got {num_reg_tokens!r}.')
        self.arch_name = arch if isinstance(arch, str) else None
        self.rope_type = rope_type
        self.pos_embed_antialias = bool(pos_embed_antialias)
        self.pos_embed_interp = pos_embed_interp
        self.num_reg_tokens = num_reg_tokens
        if rope_ref_grid is not None:
            self.rope_ref_grid = tuple(int(g) for g in rope_ref_grid)
        elif rope_type == 'pe':
            self.rope_ref_grid = None  # the official PE: integer positions at every size
        else:
            size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            self.rope_ref_grid = (size[0] // patch_size, size[1] // patch_size)
        setting = resolve_arch(arch)
        self.embed_dims = dim = setting['embed_dims']
        self.num_layers = setting['num_layers']
        self.num_heads = setting['num_heads']
        self.patch_size = patch_size
        self.with_cp = with_cp
        self.final_norm = final_norm
        self.num_prefix_tokens = (1 if with_cls_token else 0) + num_reg_tokens
        # prefix tokens with an absolute position embedding entry (the cls token, unless
        # the family embeds patches only)
        self.num_pos_embed_prefix = 1 if with_cls_token and cls_pos_embed else 0
        self.out_indices = self._normalize_out_indices(out_indices, self.num_layers)

        self.patch_embed = PatchEmbed(patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_cls_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, num_reg_tokens, dim)) \
            if num_reg_tokens else None
        if use_abs_pos_embed:
            img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
            self.pretrain_grid = (img_size[0] // patch_size, img_size[1] // patch_size)
            n = self.pretrain_grid[0] * self.pretrain_grid[1] + self.num_pos_embed_prefix
            self.pos_embed = nn.Parameter(torch.zeros(1, n, dim))
        else:
            self.pretrain_grid = None
            self.pos_embed = None
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm_pre = nn.LayerNorm(dim, eps=norm_eps) if pre_norm else None
        head_dim = dim // self.num_heads
        # one RoPE module shared by all blocks (fixed frequencies), or, for RoPE-Mixed,
        # one per block (learned frequencies, ``blocks.N.attn.rope.freqs``; self.rope None)
        if not use_rope:
            self.rope = None
        elif rope_type == 'dinov3':
            self.rope = DINOv3RoPE(head_dim, rope_base)
        elif rope_type == 'eva02':
            self.rope = EVA02RoPE(head_dim, rope_base)
        elif rope_type in ('naver_axial', 'pe'):
            self.rope = InterleavedRoPE2D(head_dim, rope_base, axis_order='xy')
        elif rope_type == 'naver_mixed':
            self.rope = None
        else:
            self.rope = RoPE2D(head_dim, rope_base)
        if use_rope and rope_type == 'naver_mixed':
            block_ropes = [MixedRoPE2D(head_dim, self.num_heads, rope_base)
                           for _ in range(self.num_layers)]
        else:
            block_ropes = [self.rope] * self.num_layers

        dpr = torch.linspace(0, drop_path_rate, self.num_layers, device='cpu').tolist()
        self.blocks = nn.ModuleList([
            Block(dim, self.num_heads, setting['mlp_ratio'], qkv_bias, drop_rate,
                  attn_drop_rate, dpr[i], block_ropes[i], norm_eps, layer_scale_init, mask_k_bias,
                  mlp_type, swiglu_align_to)
            for i in range(self.num_layers)])
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()
        self.reset_parameters()

    @staticmethod
    def _normalize_out_indices(out_indices: int | Sequence[int], num_layers: int) -> tuple[int, ...]:
        idx = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        out = []
        for i in idx:
            j = i + num_layers if i < 0 else i
            if not 0 <= j < num_layers:
                raise IndexError(f'out_indices entry {i} is outside the {num_layers} blocks '
                                 f'(valid: -{num_layers} .. {num_layers - 1}).')
            out.append(j)
        return tuple(out)

    def reset_parameters(self) -> None:
        """timm-style init: truncated normal (std 0.02) for linear layers and tokens."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=0.02)
        nn.init.zeros_(self.patch_embed.proj.bias)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.reg_token is not None:
            nn.init.trunc_normal_(self.reg_token, std=0.02)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    # ----------------------------------------------------------------- tokens
    def abs_pos_embed(self, pos: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        """Learned absolute embedding, resized (bicubic) to the full ``grid_size`` and
        read at ``pos`` (bilinear, so fractional positions work). Returns (B, N, C)."""
        gh, gw = self.pretrain_grid
        table = self.pos_embed[:, self.num_pos_embed_prefix:]
        table = table.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
        if (gh, gw) != tuple(grid_size):
            table = F.interpolate(table, size=tuple(grid_size), mode=self.pos_embed_interp,
                                  align_corners=False, antialias=self.pos_embed_antialias)
        H, W = grid_size
        if pos.dim() == 2:
            pos = pos.unsqueeze(0)
        norm = torch.stack([(pos[..., 1] + 0.5) / W, (pos[..., 0] + 0.5) / H], dim=-1) * 2 - 1
        sampled = F.grid_sample(table.expand(pos.shape[0], -1, -1, -1),
                                norm.unsqueeze(1).to(table.dtype), mode='bilinear',
                                align_corners=False)  # (B, C, 1, N)
        return sampled.squeeze(2).transpose(1, 2)

    def prepare_tokens(self, tokens: torch.Tensor, pos: torch.Tensor,
                       grid_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Add the absolute embedding (if any), prepend the cls and register tokens
        (if any), in that order, and apply the pre-norm (PE's ``ln_pre``, if any)."""
        if self.pos_embed is not None:
            if grid_size is None:
                grid_size = (int(pos[..., 0].max()) + 1, int(pos[..., 1].max()) + 1)
            tokens = tokens + self.abs_pos_embed(pos, grid_size)
        if self.cls_token is not None:
            cls = self.cls_token.expand(tokens.shape[0], -1, -1)
            if self.pos_embed is not None and self.num_pos_embed_prefix:
                cls = cls + self.pos_embed[:, :1]
            tokens = torch.cat([cls, tokens], dim=1)
        if self.reg_token is not None:
            reg = self.reg_token.expand(tokens.shape[0], -1, -1)
            p = 1 if self.cls_token is not None else 0
            tokens = torch.cat([tokens[:, :p], reg, tokens[:, p:]], dim=1)
        tokens = self.pos_drop(tokens)
        return tokens if self.norm_pre is None else self.norm_pre(tokens)

    def rope_positions(self, pos: torch.Tensor,
                       grid_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Token-grid ``(y, x)`` positions -> the coordinates this model's RoPE rotates
        by: unchanged for ``'axial'`` and RoPE-ViT's ``'naver_*'``; for ``'dinov3'``
        normalised to [-1, 1] by the *full* image's token grid ``grid_size`` (so a Win-Win
        window's tokens keep their full-image coordinates), for ``'eva02'`` rescaled to
        the pre-training grid, for ``'pe'`` shifted by 1 past the cls token. Affine, so
        Expedite's weighted-mean cluster positions commute with it."""
        if self.rope_type == 'dinov3':
            return dinov3_coordinates(pos, grid_size)
        if self.rope_type == 'eva02':
            return eva02_coordinates(pos, grid_size, self.rope_ref_grid)
        if self.rope_type == 'pe':
            offset = 1.0 if self.cls_token is not None else 0.0
            return pe_coordinates(pos, grid_size, offset, self.rope_ref_grid)
        return pos

    def run_block(self, index: int, x: torch.Tensor, pos: torch.Tensor,
                  attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run block ``index``, with gradient checkpointing when asked for."""
        blk = self.blocks[index]
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(blk, x, pos, self.num_prefix_tokens, attn_mask, use_reentrant=False)
        return blk(x, pos, self.num_prefix_tokens, attn_mask)

    def output_tokens(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens of block ``index``'s output (final norm after the last block)."""
        if index == self.num_layers - 1:
            x = self.norm(x)
        return x[:, self.num_prefix_tokens:]

    def forward_tokens(self, tokens: torch.Tensor, pos: torch.Tensor,
                       grid_size: tuple[int, int] | None = None, *,
                       window_shapes: Sequence[tuple[int, int]] | None = None
                       ) -> list[torch.Tensor]:
        """Run the blocks on patch tokens at explicit positions (the one block loop,
        :func:`~mmwinwin.layers.vit.block_loop.run_blocks`, with the plain policy).

        Args:
            tokens: ``(B, N, C)`` patch embeddings (any subset of an image's tokens).
            pos: ``(B, N, 2)`` or ``(N, 2)`` (y, x) coordinates in the full token grid.
            grid_size: the full image's token grid, needed only to read the absolute
                position embedding (defaults to the extent of ``pos``).
            window_shapes: the ``(h, w)`` token grids of the Win-Win windows the tokens
                come from, in order. Only checked here (they must account for all ``N``
                tokens): every block of a plain ViT attends over all kept tokens, which is
                Win-Win's global interaction. Windowed models (ViTDet) use them.

        Returns:
            ``(B, N, C)`` patch tokens for each of ``out_indices``.
        """
        if pos.shape[-2] != tokens.shape[1] or pos.shape[-1] != 2:
            raise ValueError(f'Got {tokens.shape[1]} tokens but positions of shape '
                             f'{tuple(pos.shape)}; expected (B, {tokens.shape[1]}, 2).')
        if window_shapes is not None:
            check_window_shapes(window_shapes, tokens.shape[1])
        pos = pos.to(device=tokens.device)
        x = self.prepare_tokens(tokens, pos, grid_size)
        if self.rope_type != 'axial':
            pos = self.rope_positions(pos, grid_size)
        return run_blocks(self, x, pos)

    # ------------------------------------------------------------------ image
    def embed_image(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Patch tokens of a whole image, their grid positions and the grid size."""
        tokens, hw = self.patch_embed(img)
        return tokens, grid_positions(*hw, device=tokens.device), hw

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Whole-image forward: ``(B, C, H, W)`` feature maps for each of ``out_indices``."""
        tokens, pos, (h, w) = self.embed_image(img)
        outs = self.forward_tokens(tokens, pos, (h, w))
        return [o.transpose(1, 2).reshape(o.shape[0], -1, h, w) for o in outs]
