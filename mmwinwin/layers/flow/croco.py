"""A binocular RoPE ViT for optical flow, in the CroCo-Flow style (pure PyTorch).

* **Encoder**: one :class:`RoPEVisionTransformer` (shared weights) encodes frame 1 and
  frame 2 separately.
* **Decoder**: blocks of self-attention among frame-1 tokens, cross-attention from
  frame-1 tokens (queries) to frame-2 tokens (keys/values) and an MLP; RoPE rotates
  queries by frame-1 positions and keys by frame-2 positions, so attention sees the
  relative offset between a pixel and its candidate match.
* **Head**: DPT-style -- four token maps (the encoder output and decoder block outputs)
  are reassembled at strides 4, 8, 16 and 32 px (patch 16), fused coarse-to-fine with
  residual conv units and upsampled to a dense 2-channel flow at full resolution.

Win-Win: :meth:`CroCoFlowNet.forward_windows` runs the same network on the tokens of a
few windows only (frame-2 tokens chosen by the pairing policy of ``layers/winwin/pair_windows.py``),
and the head sees each window as a small dense grid of its own. :meth:`forward` is the
single full-resolution pass on whole frames.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..winwin.pair_windows import check_batch_windows, pair_window_tokens, tokens_to_window_grids
from ..vit.block_loop import run_blocks
from ..vit.rope import RoPE2D
from ..vit.vision_transformer import Mlp, RoPEVisionTransformer

__all__ = ['CrossAttention', 'DecoderBlock', 'DPTFlowHead', 'CroCoFlowNet']


class CrossAttention(nn.Module):
    """Multi-head attention from ``x`` (queries) to ``y`` (keys/values), RoPE on both.

    ``offset_readout=True`` also returns *where* each head looked: the key positions are
    appended to the values, so the attention output carries the attention-weighted key
    position; minus the query position this is a soft displacement (tokens, per head),
    projected and added to the output. RoPE alone puts the offset into the attention
    *weights* only -- position-free values cannot tell the decoder which neighbour matched,
    which a from-scratch model then has to infer indirectly (slow to learn).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 rope: RoPE2D | None = None, offset_readout: bool = False) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'decoder embed_dims ({dim}) must be divisible by num_heads '
                             f'({num_heads}).')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        self.offset_proj = nn.Linear(2 * num_heads, dim) if offset_readout else None

    def forward(self, x: torch.Tensor, y: torch.Tensor, pos_x: torch.Tensor,
                pos_y: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        M = y.shape[1]
        q = self.q(x).reshape(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(y).reshape(B, M, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.rope is not None:
            q, k = self.rope(q, pos_x), self.rope(k, pos_y)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        if self.offset_proj is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.proj(out.transpose(1, 2).reshape(B, N, C))
        py = pos_y.to(v.dtype).expand(B, M, 2)[:, None].expand(B, self.num_heads, M, 2)
        out = F.scaled_dot_product_attention(q, k, torch.cat([v, py], -1), attn_mask=mask)
        px = pos_x.to(v.dtype).expand(B, N, 2)[:, None]
        offset = (out[..., -2:] - px).transpose(1, 2).reshape(B, N, 2 * self.num_heads)
        out = out[..., :-2].transpose(1, 2).reshape(B, N, C)
        return self.proj(out) + self.offset_proj(offset)


class DecoderBlock(nn.Module):
    """Self-attention on frame 1, cross-attention to frame 2, MLP (all pre-norm)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 rope: RoPE2D | None = None, norm_eps: float = 1e-6,
                 offset_readout: bool = False) -> None:
        super().__init__()
        from ..vit.vision_transformer import Attention
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.norm_y = nn.LayerNorm(dim, eps=norm_eps)
        self.cross_attn = CrossAttention(dim, num_heads, rope=rope, offset_readout=offset_readout)
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, y: torch.Tensor, pos_x: torch.Tensor,
                pos_y: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), pos_x)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), pos_x, pos_y, key_mask)
        return x + self.mlp(self.norm3(x))


class _ResidualConvUnit(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _FusionBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.res1 = _ResidualConvUnit(c)
        self.res2 = _ResidualConvUnit(c)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None,
                size: tuple[int, int]) -> torch.Tensor:
        if skip is not None:
            x = x + self.res1(skip)
        x = self.res2(x)
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        return self.out(x)


class DPTFlowHead(nn.Module):
    """DPT-style dense head: four token maps -> ``(B, out_channels, H, W)``.

    Args:
        in_dims: channels of the four input maps (finest-to-be first).
        layer_dims: channels after reassembly of each map.
        features: channels of the fusion path.
        out_channels: 2 for flow.
    """

    def __init__(self, in_dims: Sequence[int], layer_dims: Sequence[int] = (96, 192, 384, 768),
                 features: int = 256, out_channels: int = 2) -> None:
        super().__init__()
        if len(in_dims) != 4 or len(layer_dims) != 4:
            raise ValueError(f'DPTFlowHead takes exactly 4 feature maps; got in_dims={in_dims}, '
                             f'layer_dims={layer_dims}.')
        self.project = nn.ModuleList([nn.Conv2d(i, o, 1) for i, o in zip(in_dims, layer_dims)])
        self.resample = nn.ModuleList([
            nn.ConvTranspose2d(layer_dims[0], layer_dims[0], 4, stride=4),
            nn.ConvTranspose2d(layer_dims[1], layer_dims[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(layer_dims[3], layer_dims[3], 3, stride=2, padding=1)])
        self.layer_rn = nn.ModuleList([nn.Conv2d(d, features, 3, padding=1, bias=False)
                                       for d in layer_dims])
        self.fusion = nn.ModuleList([_FusionBlock(features) for _ in range(4)])
        self.head = nn.Sequential(
            nn.Conv2d(features, features // 2, 3, padding=1),
            nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
            nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, out_channels, 1))

    def forward(self, feats: Sequence[torch.Tensor], out_size: tuple[int, int]) -> torch.Tensor:
        h, w = feats[0].shape[-2:]
        layers = [rn(rs(pr(f))) for f, pr, rs, rn in
                  zip(feats, self.project, self.resample, self.layer_rn)]
        sizes = [l.shape[-2:] for l in layers]
        x = self.fusion[3](layers[3], None, tuple(sizes[2]))
        x = self.fusion[2](x, layers[2], tuple(sizes[1]))
        x = self.fusion[1](x, layers[1], tuple(sizes[0]))
        x = self.fusion[0](x, layers[0], (sizes[0][0] * 2, sizes[0][1] * 2))
        x = self.head(x)
        if tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, size=tuple(out_size), mode='bilinear', align_corners=False)
        return x


class CroCoFlowNet(nn.Module):
    """Binocular RoPE ViT + cross-attention decoder + DPT head -> flow in pixels.

    Args:
        encoder: keyword arguments of :class:`RoPEVisionTransformer` (``use_rope`` forced on,
            ``out_indices`` forced to the last block).
        dec_embed_dims, dec_num_layers, dec_num_heads, dec_mlp_ratio: decoder size
            (CroCo: 768 / 12 / 12 / 4 with a ViT-B encoder).
        head_hooks: four indices into ``[encoder output, decoder block 1, ..., block L]``
            whose tokens feed the head (CroCo-Flow: ``(0, L//2, 3L//4, L)``).
        head_features, head_layer_dims: DPT head widths.
        flow_scale: the head's output is multiplied by this (pixels per unit).
        dec_offset_readout: cross-attention also outputs the attention-weighted
            displacement to the frame-2 keys (see :class:`CrossAttention`), and its query and
            key projections start equal (std ``2 / sqrt(dim)``), so attention logits start as
            a content similarity between frame-1 and frame-2 tokens instead of ~0 (uniform
            attention, no matching signal). Off = plain CroCo. A from-scratch model learns
            motion with it and not without it (docs/flow.md, measured on generated pairs).
    """

    def __init__(self, encoder: dict | None = None, dec_embed_dims: int = 768,
                 dec_num_layers: int = 12, dec_num_heads: int = 12, dec_mlp_ratio: float = 4.0,
                 head_hooks: Sequence[int] | None = None, head_features: int = 256,
                 head_layer_dims: Sequence[int] = (96, 192, 384, 768),
                 flow_scale: float = 1.0, dec_offset_readout: bool = False) -> None:
        super().__init__()
        enc_cfg = dict(arch='base', patch_size=16)
        enc_cfg.update(encoder or {})
        if not enc_cfg.pop('use_rope', True):
            raise ValueError('CroCoFlowNet needs a RoPE encoder (use_rope=True): windows are '
                             'placed anywhere in training and the whole frame is used at test.')
        enc_cfg['out_indices'] = -1
        self.encoder = RoPEVisionTransformer(use_rope=True, **enc_cfg)
        self.patch_size = self.encoder.patch_size
        enc_dim = self.encoder.embed_dims
        rope_base = enc_cfg.get('rope_base', 100.0)
        self.decoder_embed = nn.Linear(enc_dim, dec_embed_dims)
        self.dec_rope = RoPE2D(dec_embed_dims // dec_num_heads, rope_base)
        self.dec_blocks = nn.ModuleList([
            DecoderBlock(dec_embed_dims, dec_num_heads, dec_mlp_ratio, self.dec_rope,
                         offset_readout=dec_offset_readout)
            for _ in range(dec_num_layers)])
        self.dec_norm = nn.LayerNorm(dec_embed_dims, eps=1e-6)
        L = dec_num_layers
        if head_hooks is None:
            head_hooks = (0, max(1, L // 2), max(1, (3 * L) // 4), L)
        head_hooks = tuple(int(h) for h in head_hooks)
        if len(head_hooks) != 4 or min(head_hooks) < 0 or max(head_hooks) > L:
            raise ValueError(f'head_hooks must be 4 indices in [0, {L}] (0 = encoder output, '
                             f'k = decoder block k), got {head_hooks}.')
        self.head_hooks = head_hooks
        in_dims = [enc_dim if h == 0 else dec_embed_dims for h in head_hooks]
        self.head = DPTFlowHead(in_dims, head_layer_dims, head_features, 2)
        self.flow_scale = float(flow_scale)
        for m in list(self.dec_blocks.modules()) + [self.decoder_embed]:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if dec_offset_readout:
            for blk in self.dec_blocks:
                ca = blk.cross_attn
                nn.init.normal_(ca.q.weight, std=2.0 / dec_embed_dims ** 0.5)
                with torch.no_grad():
                    ca.kv.weight[:dec_embed_dims].copy_(ca.q.weight)

    # ------------------------------------------------------------ token path
    def _encode(self, tokens: torch.Tensor, pos: torch.Tensor,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        enc = self.encoder
        x = enc.prepare_tokens(tokens, pos)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        # the one block loop, plain policy; the key mask hides frame-2 padding tokens
        return run_blocks(enc, x, pos, attn_mask=mask, out_indices=[enc.num_layers - 1])[0]

    def forward_tokens(self, tok1: torch.Tensor, pos1: torch.Tensor, tok2: torch.Tensor,
                       pos2: torch.Tensor, key_mask2: torch.Tensor | None = None,
                       shared: bool = False) -> list[torch.Tensor]:
        """Encode both token sets, decode frame 1 against frame 2.

        ``shared=True`` (same tokens kept in both frames) encodes both frames in one
        batched call. Returns the four hooked ``(B, N1, C)`` token tensors.
        """
        if shared:
            B = tok1.shape[0]
            p = pos1 if pos1.dim() == 2 else torch.cat([pos1, pos2])
            f = self._encode(torch.cat([tok1, tok2]), p)
            f1, f2 = f[:B], f[B:]
        else:
            f1 = self._encode(tok1, pos1)
            f2 = self._encode(tok2, pos2, key_mask2)
        feats = [f1]
        x, y = self.decoder_embed(f1), self.decoder_embed(f2)
        for i, blk in enumerate(self.dec_blocks):
            x = blk(x, y, pos1, pos2, key_mask2)
            feats.append(self.dec_norm(x) if i == len(self.dec_blocks) - 1 else x)
        return [feats[h] for h in self.head_hooks]

    # ------------------------------------------------------------ whole frames
    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        """Single full-resolution pass: ``(B, 3, H, W)`` x 2 -> flow ``(B, 2, H, W)``."""
        if img1.shape != img2.shape:
            raise ValueError(f'Both frames must have the same shape, got {tuple(img1.shape)} '
                             f'and {tuple(img2.shape)}.')
        H, W = img1.shape[-2:]
        tok1, pos, (h, w) = self.encoder.embed_image(img1)
        tok2, _, _ = self.encoder.embed_image(img2)
        hooks = self.forward_tokens(tok1, pos, tok2, pos, shared=True)
        maps = [t.transpose(1, 2).reshape(t.shape[0], -1, h, w) for t in hooks]
        flow = self.head(maps, (h * self.patch_size, w * self.patch_size))
        return flow[..., :H, :W] * self.flow_scale

    # ------------------------------------------------------------ Win-Win
    def forward_windows(self, img1: torch.Tensor, img2: torch.Tensor,
                        batch_windows: Sequence[Sequence[Sequence[int]]],
                        margin: int = 0) -> torch.Tensor:
        """Win-Win training pass on ``N`` square windows per sample.

        Args:
            batch_windows: per sample, ``N`` windows ``(top, left, s, s)`` in tokens
                (:func:`mmwinwin.layers.winwin.windows.sample_windows`); same ``N`` and ``s``
                for the whole batch.
            margin: frame-2 pairing policy (0 = the same windows; see ``layers/winwin/pair_windows.py``).

        Returns:
            ``(B * N, 2, s * patch, s * patch)`` flow of each frame-1 window, in the order
            of :func:`crop_pair_windows`.
        """
        tok1, pos, (h, w) = self.encoder.embed_image(img1)
        tok2, _, _ = self.encoder.embed_image(img2)
        n, size = check_batch_windows(batch_windows, (h, w))
        idx1, idx2, mask2 = pair_window_tokens(batch_windows, (h, w), margin, tok1.device)
        C = tok1.shape[-1]
        t1 = tok1.gather(1, idx1[..., None].expand(-1, -1, C))
        t2 = tok2.gather(1, idx2[..., None].expand(-1, -1, C))
        p1, p2 = pos[idx1], pos[idx2]
        hooks = self.forward_tokens(t1, p1, t2, p2, mask2, shared=(margin == 0))
        maps = [tokens_to_window_grids(t, n, size) for t in hooks]
        s = size * self.patch_size
        return self.head(maps, (s, s)) * self.flow_scale
