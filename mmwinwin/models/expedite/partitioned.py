"""Expedited detection backbones, checkpoints unchanged (subclasses, no new parameter).

* ``ExpeditedRoPEViTDet``: the ViTDet-style :class:`RoPEViTDet` with clusters
  per attention window (``mmwinwin.layers.expedite.partitioned_plugin``).
* ``ExpeditedSwinTransformer``: mmdet's ``SwinTransformer`` (as in its Mask2Former Swin
  configs). Inside the stage that holds block ``alpha`` (counted from 1 over all
  stages), each ``window x window`` window is clustered to a square grid (64 -> 8x8),
  the windows' cluster grids are laid side by side and the stage's remaining blocks run
  (shifted) window attention on that map with the cluster grid as window and the
  relative position bias resized to it (:func:`resize_relative_position_bias`: an
  offset of one cluster cell spans ``window / clusters`` tokens; bilinear with
  ``align_corners=False`` as the official code, or ``'bicubic-aligned'``). The full grid is rebuilt at the end of the
  stage, before patch merging, so every stage output and later stage sees the usual
  resolution.

Config: change the backbone ``type`` and add ``expedite=dict(alpha=..., num_clusters=...,
window=..., temperature=..., k=...)`` (:class:`mmwinwin.layers.ExpediteSettings`);
``expedite=None`` is the plain model. ``ExpeditedRoPEViTDet`` also takes, instead,
``token_merging=dict(alpha=..., r=...)`` (merges per attention partition, ``r`` per
partition) or ``token_pooling=dict(alpha=..., stride=...)`` (the grid and the partitions
shrink by the stride).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.backbones.swin import SwinTransformer

from ...layers import ExpediteSettings, merged_partitioned_forward, pooled_partitioned_forward
from ...layers.expedite.partitioned_plugin import expedited_partitioned_forward
from ...layers.vit.partition import partition_tokens, unpartition_tokens
from ...layers.expedite.partitioned import (cluster_grid_of_partitions, cluster_partitions,
                                         partitions_of_cluster_grid, reconstruct_partitions)
from ...registry import register
from ..vit.vitdet import RoPEViTDet
from .vit import build_token_policy_settings

__all__ = ['ExpeditedRoPEViTDet', 'ExpeditedSwinTransformer', 'swin_block_forward',
           'relative_position_index', 'resize_relative_position_bias']


@register('MODELS')
class ExpeditedRoPEViTDet(RoPEViTDet):
    """:class:`RoPEViTDet` with Expedite (clusters per window), or token merging / token
    pooling (at most one of the three). All act on whole-image forwards
    (``forward_grid``); Win-Win's window batches run the plain model.

    Args:
        expedite: dict of :class:`~mmwinwin.layers.ExpediteSettings`; the cluster grid is
            per window (``num_clusters=64`` -> 8x8 clusters in each 14x14 window).
        token_merging: dict of :class:`~mmwinwin.layers.TokenMergingSettings`; ``r``
            tokens merged per attention partition before each block after alpha
            (:class:`~mmwinwin.layers.PartitionedTokenMergingPolicy`).
        token_pooling: dict of :class:`~mmwinwin.layers.TokenPoolingSettings` with a
            square stride (:class:`~mmwinwin.layers.PartitionedTokenPoolingPolicy`).
    """

    def __init__(self, *args, expedite: dict | None = None, token_merging: dict | None = None,
                 token_pooling: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expedite, self.token_merging, self.token_pooling = build_token_policy_settings(
            expedite, token_merging, token_pooling, self.num_layers, type(self).__name__)
        ps = self.partition_size
        if self.expedite is not None:
            self.expedite.grid_for((ps, ps))  # validate now
        if self.token_merging is not None:
            self.token_merging.check_tokens((ps, ps), self.num_layers)
        if self.token_pooling is not None and len(set(self.token_pooling.stride)) != 1:
            raise ValueError(f'{type(self).__name__}: token_pooling needs a square stride (the '
                             f'attention partitions are square), got '
                             f'{self.token_pooling.stride}; use stride='
                             f'{max(self.token_pooling.stride)}.')

    def forward_grid(self, tokens, pos, hw):  # noqa: D102
        if self.token_merging is not None:
            return merged_partitioned_forward(self, tokens, pos, hw, self.token_merging)
        if self.token_pooling is not None:
            return pooled_partitioned_forward(self, tokens, pos, hw, self.token_pooling)
        if self.expedite is None:
            return super().forward_grid(tokens, pos, hw)
        return expedited_partitioned_forward(self, tokens, pos, hw, self.expedite)


# ------------------------------------------------------------------ Swin's bias over clusters
BIAS_RESIZES = ('bilinear', 'bicubic-aligned')


def relative_position_index(window: int, device: torch.device | None = None) -> torch.Tensor:
    """Swin's ``(w*w, w*w)`` index into a ``(2w-1)^2`` relative-position-bias table."""
    ys, xs = torch.meshgrid(torch.arange(window, device=device),
                            torch.arange(window, device=device), indexing='ij')
    coords = torch.stack([ys.reshape(-1), xs.reshape(-1)])  # (2, w*w)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def resize_relative_position_bias(table: torch.Tensor, window: int, new_window: int,
                                  mode: str = 'bilinear') -> torch.Tensor:
    """Resize a ``((2w-1)^2, heads)`` bias table to ``((2w'-1)^2, heads)``: ``'bilinear'``
    with ``align_corners=False`` (official), or ``'bicubic-aligned'`` (bicubic, corners
    aligned: the largest offsets map onto each other)."""
    if mode not in BIAS_RESIZES:
        raise ValueError(f"bias_resize must be 'bilinear' (official) or 'bicubic-aligned', "
                         f"got {mode!r}.")
    n = 2 * window - 1
    if table.shape[0] != n * n:
        raise ValueError(f'A relative position bias table for window {window} has {n * n} '
                         f'rows, got {table.shape[0]}.')
    if new_window == window:
        return table
    m = 2 * new_window - 1
    t = table.t().reshape(1, -1, n, n)
    if mode == 'bilinear':
        t = F.interpolate(t.float(), size=(m, m), mode='bilinear', align_corners=False)
    else:
        t = F.interpolate(t.float(), size=(m, m), mode='bicubic', align_corners=True)
    return t.reshape(-1, m * m).t().to(table.dtype)


def _swin_window_attention(sw, x: torch.Tensor, hw: tuple[int, int], window: int, shift: int,
                           bias_table: torch.Tensor) -> torch.Tensor:
    """mmdet's ``ShiftWindowMSA`` with its own weights but any window / shift / bias."""
    B, L, C = x.shape
    H, W = hw
    x = x.view(B, H, W, C)
    pad_b, pad_r = (-H) % window, (-W) % window
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = H + pad_b, W + pad_r
    mask = None
    if shift > 0:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        img_mask = torch.zeros((1, Hp, Wp, 1), device=x.device)
        cnt = 0
        for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                img_mask[:, hs, ws, :] = cnt
                cnt += 1
        mw = partition_tokens(img_mask, window)[0][..., 0]  # (nW, N)
        mask = (mw[:, None, :] - mw[:, :, None]).ne(0).float() * -100.0
    windows = partition_tokens(x, window)[0]  # (B*nW, N, C)
    msa = sw.w_msa
    Bw, N, _ = windows.shape
    nh = msa.num_heads
    q, k, v = msa.qkv(windows).reshape(Bw, N, 3, nh, C // nh).permute(2, 0, 3, 1, 4)
    attn = (q * msa.scale) @ k.transpose(-2, -1)
    index = relative_position_index(window, device=x.device)
    bias = bias_table[index.reshape(-1)].view(N, N, -1).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = (attn.view(Bw // nW, nW, nh, N, N) + mask[None, :, None]).view(-1, nh, N, N)
    attn = msa.attn_drop(attn.softmax(dim=-1))
    out = msa.proj_drop(msa.proj((attn @ v).transpose(1, 2).reshape(Bw, N, C)))
    out = unpartition_tokens(out, window, (Hp, Wp), (Hp, Wp))
    if shift > 0:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return sw.drop(out[:, :H, :W].reshape(B, H * W, C))


def swin_block_forward(block, x: torch.Tensor, hw: tuple[int, int], window: int | None = None,
                       shift: int | None = None, bias_table: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """An mmdet ``SwinBlock`` with its own weights, run with any window size, shift and
    relative position bias table (defaults: the block's own)."""
    sw = block.attn
    window = sw.window_size if window is None else window
    shift = sw.shift_size if shift is None else shift
    table = sw.w_msa.relative_position_bias_table if bias_table is None else bias_table
    identity = x
    x = _swin_window_attention(sw, block.norm1(x), hw, window, shift, table) + identity
    return block.ffn(block.norm2(x), identity=x)


@register('MODELS')
class ExpeditedSwinTransformer(SwinTransformer):
    """mmdet's ``SwinTransformer`` with Expedite clusters per window.

    Args:
        expedite: dict of :class:`~mmwinwin.layers.ExpediteSettings`; ``alpha`` counts
            blocks from 1 over all stages (Swin-L: 2 + 2 + 18 + 2 = 24), the cluster grid
            is per window (``num_clusters=64`` -> 8x8 in a 12x12 window).
        **kwargs: every argument of mmdet's ``SwinTransformer``.
    """

    def __init__(self, *args, expedite: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expedite = ExpediteSettings.build(expedite)
        self.num_blocks = sum(len(s.blocks) for s in self.stages)
        if self.expedite is not None:
            self.expedite.check_alpha(self.num_blocks)
            ws = self.stages[0].blocks[0].attn.window_size
            grid = self.expedite.grid_for((ws, ws))
            if grid[0] != grid[1]:
                raise ValueError(f'Swin needs a square cluster grid per window; '
                                 f'{self.expedite} gives {grid}.')

    def _expedited_stage(self, stage, x: torch.Tensor, hw: tuple[int, int], local: int):
        s = self.expedite
        for blk in stage.blocks[:local]:
            x = blk(x, hw)
        B, L, C = x.shape
        ws = stage.blocks[0].attn.window_size
        clusters = cluster_partitions(x.view(B, *hw, C), ws, s)
        c = clusters.cluster_grid[0]
        grid = cluster_grid_of_partitions(clusters.centers, clusters)
        ghw = tuple(grid.shape[1:3])
        y = grid.reshape(B, -1, C)
        for blk in stage.blocks[local:]:
            table = resize_relative_position_bias(blk.attn.w_msa.relative_position_bias_table,
                                                  ws, c, s.bias_resize)
            shift = c // 2 if blk.attn.shift_size > 0 else 0
            y = swin_block_forward(blk, y, ghw, c, shift, table)
        refined = partitions_of_cluster_grid(y.view(B, *ghw, C), clusters)
        x = reconstruct_partitions(refined, clusters).reshape(B, L, C)
        if stage.downsample:
            x_down, down_hw = stage.downsample(x, hw)
            return x_down, down_hw, x, hw
        return x, hw, x, hw

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s = self.expedite
        if s is None or s.alpha == self.num_blocks:
            return super().forward(x)
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        start = 0
        for i, stage in enumerate(self.stages):
            n = len(stage.blocks)
            if start <= s.alpha < start + n:
                x, hw_shape, out, out_hw = self._expedited_stage(stage, x, hw_shape,
                                                                 s.alpha - start)
            else:
                x, hw_shape, out, out_hw = stage(x, hw_shape)
            start += n
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.view(-1, *out_hw, self.num_features[i])
                            .permute(0, 3, 1, 2).contiguous())
        return outs
