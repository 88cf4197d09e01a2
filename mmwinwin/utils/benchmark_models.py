"""The models the benchmarks measure, in pure PyTorch (no mmengine / mmseg / mmdet), so
``tools/analysis_tools/benchmark_device.py`` runs them on a GPU machine that has torch only.

* :class:`LinearSegModel` and :func:`training_step`: a RoPE ViT with a linear segmentation
  head, one training step on Win-Win windows or on the whole image
  (``benchmark_winwin.py``, ``benchmark_device.py``);
* :class:`SegmenterShaped` (:class:`MaskTransformerHead`): a RoPE ViT with a cls token and
  Segmenter's mask transformer, Expedite reconstructing the logits (``benchmark_device.py``);
* :data:`FLOW_ARCHS`: the CroCo-Flow-style ``CroCoFlowNet`` sizes (``benchmark_flow.py``,
  ``benchmark_device.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import (ExpediteSettings, RoPEVisionTransformer, crop_windows, embed_windows,
                      expedited_forward_tokens, reconstruct_tokens, sample_windows,
                      window_grids)
from ..layers.vit.vision_transformer import Block

__all__ = ['LinearSegModel', 'training_step', 'MaskTransformerHead', 'SegmenterShaped',
           'FLOW_ARCHS']

FLOW_ARCHS = {
    # CroCo-Flow-style ViT-B/16 (the Win-Win flow model): 12+12 blocks, 768 wide
    'base': dict(encoder=dict(arch='base'), dec_embed_dims=768, dec_num_layers=12,
                 dec_num_heads=12, head_hooks=(0, 6, 9, 12)),
    'small': dict(encoder=dict(arch='small'), dec_embed_dims=384, dec_num_layers=8,
                  dec_num_heads=6, head_hooks=(0, 4, 6, 8), head_features=128,
                  head_layer_dims=(48, 96, 192, 384)),
    'tiny': dict(encoder=dict(arch=dict(embed_dims=64, num_layers=2, num_heads=2)),
                 dec_embed_dims=64, dec_num_layers=2, dec_num_heads=2, head_hooks=(0, 1, 2, 2),
                 head_features=32, head_layer_dims=(16, 32, 64, 64)),
}


class LinearSegModel(nn.Module):
    """A RoPE ViT with a 1x1-conv segmentation head upsampled to pixels (cross entropy)."""

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__()
        self.vit = RoPEVisionTransformer(arch=arch, patch_size=16)
        self.head = nn.Conv2d(self.vit.embed_dims, num_classes, 1)

    def logits(self, feat: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(self.head(feat), size=size, mode='bilinear', align_corners=False)

    def loss_fullres(self, img, label):
        feat = self.vit(img)[-1]
        return F.cross_entropy(self.logits(feat, label.shape[-2:]), label)

    def loss_winwin(self, img, label, batch_windows):
        p = self.vit.patch_size
        grid = (-(-img.shape[2] // p), -(-img.shape[3] // p))
        tok, pos = embed_windows(self.vit.patch_embed, img, batch_windows, p)
        out = self.vit.forward_tokens(tok, pos, grid)[-1]
        losses = []
        for j, feat in enumerate(window_grids(out, batch_windows[0])):
            crops = torch.stack([crop_windows(label[b], [batch_windows[b][j]], p)[0]
                                 for b in range(img.shape[0])])
            losses.append(F.cross_entropy(self.logits(feat, crops.shape[-2:]), crops))
        return torch.stack(losses).mean()


def training_step(model: LinearSegModel, opt: torch.optim.Optimizer, img: torch.Tensor,
                  label: torch.Tensor, mode: str, grid, num_windows: int, window: int,
                  gen: torch.Generator) -> None:
    """One training step, forward + backward + optimizer: ``mode='winwin'`` on freshly
    sampled windows (one list per image), ``'fullres'`` on the whole images."""
    if mode == 'winwin':
        wins = [sample_windows(grid, num_windows, window, generator=gen)
                for _ in range(img.shape[0])]
        loss = model.loss_winwin(img, label, wins)
    else:
        loss = model.loss_fullres(img, label)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


class MaskTransformerHead(nn.Module):
    """Segmenter's mask transformer, shaped for the benchmark: ``layers`` blocks over
    [patch tokens | class tokens], masks = normalised patches x classes. Runs on any
    token set (the clusters when Expedite reconstructs on the logits)."""

    def __init__(self, dim: int, heads: int, layers: int, num_classes: int) -> None:
        super().__init__()
        self.cls_emb = nn.Parameter(torch.randn(1, num_classes, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.proj_patch = nn.Linear(dim, dim, bias=False)
        self.proj_classes = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.mask_norm = nn.LayerNorm(num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        x = torch.cat([x, self.cls_emb.expand(x.shape[0], -1, -1)], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        patches = F.normalize(self.proj_patch(x[:, :n]), dim=-1)
        classes = F.normalize(self.proj_classes(x[:, n:]), dim=-1)
        return self.mask_norm(patches @ classes.transpose(1, 2))  # (B, n, classes)


class SegmenterShaped(nn.Module):
    """RoPE ViT with a cls token + mask transformer; Expedite reconstructs the logits."""

    def __init__(self, arch, head_layers: int, num_classes: int) -> None:
        super().__init__()
        self.vit = RoPEVisionTransformer(arch=arch, patch_size=16, with_cls_token=True)
        self.head = MaskTransformerHead(self.vit.embed_dims, self.vit.num_heads, head_layers,
                                        num_classes)
        self.expedite: ExpediteSettings | None = None

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        tokens, pos, grid = self.vit.embed_image(img)
        if self.expedite is None:
            return self.head(self.vit.forward_tokens(tokens, pos, grid)[-1])
        outs, weights = expedited_forward_tokens(self.vit, tokens, pos, grid, self.expedite,
                                                 reconstruct=False)
        logits = self.head(outs[-1])
        return logits if weights is None else reconstruct_tokens(logits, weights)
