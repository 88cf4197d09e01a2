"""ViTDet-style plain ViT: windowed attention in most blocks, global attention in a few.

Built on :class:`RoPEVisionTransformer` (same parameters, same checkpoint keys): only
the order in which tokens meet in attention changes. Every token keeps its (y, x)
position in the whole image, so RoPE sees true offsets inside each window and in the
global blocks. The output is a single-scale (stride = patch size) feature map; a
simple-FPN neck turns it into a pyramid.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch

from .block_loop import BlockLoopState, TokenPolicy, run_blocks
from .rope import grid_positions
from .vision_transformer import RoPEVisionTransformer
from .window_shapes import check_window_shapes
from .partition import partition_key_mask, partition_tokens, unpartition_tokens

__all__ = ['PartitionedAttentionPolicy', 'ViTDetVisionTransformer']


class PartitionedAttentionPolicy(TokenPolicy):
    """Token policy of ViTDet: blocks in ``vit.global_indices`` attend over all tokens,
    the others inside attention partitions of ``vit.partition_size``
    (``vit.run_windowed_block``).

    Args:
        hw: the whole image's ``(H, W)`` token grid (the tokens are that grid, row-major).
        grids: instead of ``hw``, the ``(h, w)`` grids of several Win-Win windows whose
            row-major tokens are concatenated in order: windowed blocks partition each
            window on its own (padded and masked as a whole image is), global blocks
            attend across all windows of the image.
    """

    def __init__(self, hw: tuple[int, int] | None = None,
                 grids: Sequence[tuple[int, int]] | None = None) -> None:
        if (hw is None) == (grids is None):
            raise ValueError('PartitionedAttentionPolicy takes exactly one of hw (the whole '
                             'token grid) and grids (the Win-Win windows\' token grids).')
        self.hw = tuple(hw) if hw is not None else None
        self.grids = [self.hw] if hw is not None else [tuple(g) for g in grids]

    def block(self, index: int, state: BlockLoopState) -> torch.Tensor:
        vit = state.vit
        if vit.is_global(index):
            return vit.run_block(index, state.x, state.pos)
        return vit.run_windowed_block(index, state.x, state.pos, self.grids)


def _partition_size(partition_size: int | None, window_size: int | None) -> int:
    """``partition_size``, or the deprecated ``window_size`` (default 14, ViTDet's)."""
    if window_size is not None:
        if partition_size is not None and partition_size != window_size:
            raise ValueError(f'Got partition_size={partition_size} and its former name '
                             f'window_size={window_size}; give partition_size only.')
        warnings.warn('ViTDet backbone: window_size is now partition_size (the attention '
                      "partitions, named apart from Win-Win's training windows); write "
                      f'partition_size={window_size}.', FutureWarning, stacklevel=3)
        return window_size
    return 14 if partition_size is None else partition_size


class ViTDetVisionTransformer(RoPEVisionTransformer):
    """RoPE ViT with window attention (ViTDet).

    Args:
        partition_size: side of the square attention partitions -- ViTDet's "window
            attention" windows -- in tokens (ViTDet: 14). Named apart from Win-Win's
            training windows, which are a different thing.
        window_size: former name of ``partition_size`` (accepted with a ``FutureWarning``,
            which Python shows by default, unlike a ``DeprecationWarning`` raised here).
        global_indices: blocks that attend globally (ViTDet ViT-B: 2, 5, 8, 11).
            Negative entries count from the end. ``None`` picks the last block of each
            quarter of the network.
        **kwargs: every argument of :class:`RoPEVisionTransformer` (a cls token is not
            supported: windows have no place for it).
    """

    def __init__(self, *args, partition_size: int | None = None,
                 global_indices: Sequence[int] | None = None, window_size: int | None = None,
                 **kwargs) -> None:
        partition_size = _partition_size(partition_size, window_size)
        if kwargs.get('with_cls_token'):
            raise ValueError('ViTDetVisionTransformer does not support with_cls_token=True: '
                             'window attention has no place for a cls token.')
        super().__init__(*args, **kwargs)
        if self.num_reg_tokens:
            raise ValueError(f'ViTDetVisionTransformer does not support register tokens '
                             f'(num_reg_tokens={self.num_reg_tokens}, e.g. from a DINOv3 arch): '
                             'window attention has no place for them. Use a plain RoPEViT.')
        if isinstance(partition_size, bool) or not isinstance(partition_size, int) or \
                partition_size < 1:
            raise ValueError(f'partition_size must be a positive int, got {partition_size!r}.')
        self.partition_size = partition_size
        n = self.num_layers
        if global_indices is None:
            global_indices = sorted({(n * (q + 1)) // 4 - 1 for q in range(4)} - {-1})
        self.global_indices = tuple(sorted(self._normalize_out_indices(list(global_indices), n)))

    def is_global(self, index: int) -> bool:
        return index in self.global_indices

    def run_windowed_block(self, index: int, x: torch.Tensor, pos: torch.Tensor,
                           hw: tuple[int, int] | Sequence[tuple[int, int]],
                           partition_size: int | None = None) -> torch.Tensor:
        """Run block ``index`` inside attention partitions of ``(B, K, C)`` tokens ``x``.

        ``hw`` is the ``(H, W)`` grid the tokens form (row-major), or a list of ``(h, w)``
        grids whose tokens are concatenated in order (Win-Win windows). Each grid is
        partitioned on its own (``partition_tokens``: zero-padded right / bottom to a
        multiple of the partition, padded keys masked by ``partition_key_mask``), so a
        window's tokens never attend to another window's; all partitions of all grids
        run in one call of the block.
        """
        ws = partition_size or self.partition_size
        grids = [tuple(g) for g in hw] if isinstance(hw[0], (tuple, list)) else [tuple(hw)]
        B, N, C = x.shape
        sizes = [h * w for h, w in grids]
        if sum(sizes) != N:
            raise ValueError(f'run_windowed_block got {N} tokens for grids {grids} '
                             f'({sum(sizes)} tokens).')
        parts, part_pos, masks, padded = [], [], [], []
        for xg, pg, (h, w) in zip(x.split(sizes, 1), pos.split(sizes, -2), grids):
            win, pad = partition_tokens(xg.reshape(B, h, w, C), ws)
            pwin, _ = partition_tokens(pg.reshape(-1, h, w, pg.shape[-1]).expand(B, -1, -1, -1),
                                       ws)
            parts.append(win)
            part_pos.append(pwin)
            masks.append(partition_key_mask((h, w), ws, B, x.device))
            padded.append(pad)
        mask = None
        if any(m is not None for m in masks):  # a padded grid: mask its keys, keep others
            masks = [m if m is not None else
                     torch.ones(p.shape[0], 1, 1, ws * ws, dtype=torch.bool, device=x.device)
                     for m, p in zip(masks, parts)]
            mask = torch.cat(masks) if len(masks) > 1 else masks[0]
        if len(parts) > 1:
            out = self.run_block(index, torch.cat(parts), torch.cat(part_pos), mask)
        else:
            out = self.run_block(index, parts[0], part_pos[0], mask)
        outs = []
        for chunk, pad, (h, w) in zip(out.split([p.shape[0] for p in parts]), padded, grids):
            outs.append(unpartition_tokens(chunk, ws, pad, (h, w)).reshape(B, h * w, C))
        return torch.cat(outs, 1) if len(outs) > 1 else outs[0]

    def _run(self, tokens: torch.Tensor, pos: torch.Tensor, grid_size,
             policy: PartitionedAttentionPolicy) -> list[torch.Tensor]:
        x = self.prepare_tokens(tokens, pos, grid_size)
        if self.rope_type != 'axial':  # the family's RoPE coordinates (normalised by the grid)
            pos = self.rope_positions(pos, grid_size)
        return run_blocks(self, x, pos, policy)

    def forward_grid(self, tokens: torch.Tensor, pos: torch.Tensor,
                     hw: tuple[int, int]) -> list[torch.Tensor]:
        """Run all blocks on a whole ``(B, H*W, C)`` token grid; returns out_indices tokens."""
        return self._run(tokens, pos, tuple(hw), PartitionedAttentionPolicy(hw))

    def forward_tokens(self, tokens: torch.Tensor, pos: torch.Tensor,
                       grid_size: tuple[int, int] | None = None, *,
                       window_shapes: Sequence[tuple[int, int]] | None = None
                       ) -> list[torch.Tensor]:
        """Run the blocks on patch tokens at explicit full-image positions.

        Args:
            tokens: ``(B, K, C)`` patch embeddings.
            pos: ``(B, K, 2)`` or ``(K, 2)`` (y, x) coordinates in the full token grid.
            grid_size: the full image's token grid.
            window_shapes: the ``(h, w)`` grids of the Win-Win windows the ``K`` tokens
                come from, row-major, concatenated in order (``window_token_index``
                order). Windowed blocks then attend inside partitions of
                ``partition_size`` within each window, global blocks across all windows.
                ``None``: the tokens are the whole ``grid_size`` grid (row-major) and
                this is :meth:`forward_grid`, the whole-image forward.

        Returns:
            ``(B, K, C)`` patch tokens for each of ``out_indices``.
        """
        if pos.shape[-2] != tokens.shape[1] or pos.shape[-1] != 2:
            raise ValueError(f'Got {tokens.shape[1]} tokens but positions of shape '
                             f'{tuple(pos.shape)}; expected (B, {tokens.shape[1]}, 2).')
        pos = pos.to(device=tokens.device)
        K = tokens.shape[1]
        if window_shapes is None:
            if grid_size is None or int(grid_size[0]) * int(grid_size[1]) != K:
                raise ValueError(
                    f'{type(self).__name__}.forward_tokens got {K} tokens without '
                    f'window_shapes, and they are not a whole grid_size={grid_size} grid: '
                    'window attention needs to know the token grids. Pass '
                    'window_shapes=[(h, w), ...] (one per Win-Win window, in order), or all '
                    'H*W tokens of the image with grid_size=(H, W). (Tokens that form no '
                    'grid, such as the random-tokens ablation, need a plain RoPEViT.)')
            return self.forward_grid(tokens, pos, (int(grid_size[0]), int(grid_size[1])))
        grids = check_window_shapes(window_shapes, K)
        return self._run(tokens, pos, grid_size, PartitionedAttentionPolicy(grids=grids))

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C, H, W)`` feature maps (stride = patch size) for each of ``out_indices``."""
        tokens, hw = self.patch_embed(img)
        pos = grid_positions(*hw, device=tokens.device)
        outs = self.forward_grid(tokens, pos, hw)
        h, w = hw
        return [o.transpose(1, 2).reshape(o.shape[0], -1, h, w) for o in outs]
