"""``ViTDepthHead``: a small DPT-style convolutional depth head for plain-ViT features.

mmseg's only depth head (``VPDDepthHead``) wants four levels of a diffusion backbone.
This head takes any number of same-stride ViT feature maps (e.g. blocks 3, 6, 9, 12),
projects each with a 1x1 conv, fuses them top-down with residual 3x3 convs (as DPT's
fusion blocks, without DPT's reassembly to several strides), upsamples by 2 per stage
and predicts ``max_depth * sigmoid(.)``. Trained with ``SiLogLoss`` on
``gt_depth_map``; works unchanged on Win-Win windows and on whole images.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmseg.models.builder import build_loss
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import nn

from ...registry import register

__all__ = ['ViTDepthHead']


class _ResidualConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


@register('MODELS')
class ViTDepthHead(BaseDecodeHead):
    """Depth head for ViT feature maps.

    Args:
        in_channels: channels of each selected input level (int or list).
        in_index: which backbone/neck outputs to use (int or list).
        channels: width of the head.
        num_upsample: number of x2 upsampling stages after fusion.
        max_depth: output range is ``(0, max_depth)`` metres.
        loss_decode: loss config(s), default ``SiLogLoss``.
    """

    def __init__(self, in_channels: int | Sequence[int] = 768,
                 in_index: int | Sequence[int] = -1, channels: int = 128,
                 num_upsample: int = 2, max_depth: float = 10.0, align_corners: bool = False,
                 loss_decode: dict | Sequence[dict] = dict(type='SiLogLoss'),
                 init_cfg: dict | None = dict(type='TruncNormal', std=0.02,
                                              layer=['Conv2d'])) -> None:
        # BaseDecodeHead's __init__ builds a classifier; a depth head skips it.
        super(BaseDecodeHead, self).__init__(init_cfg=init_cfg)
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if isinstance(in_channels, int):
            in_channels = [in_channels] * len(in_index)
        if len(in_channels) != len(in_index):
            raise ValueError(f'ViTDepthHead: in_channels {in_channels} and in_index {in_index} '
                             'must have the same length.')
        if max_depth <= 0:
            raise ValueError(f'max_depth must be positive, got {max_depth}.')
        self.in_channels = list(in_channels)
        self.in_index = in_index
        self.channels = channels
        self.max_depth = max_depth
        self.align_corners = align_corners
        self.ignore_index = 255  # not used for depth (invalid depth is 0)
        self.input_transform = None
        self.out_channels = 1
        self.num_classes = 1  # read by the host segmentors' __init__
        self.projs = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in self.in_channels)
        self.fusions = nn.ModuleList(_ResidualConv(channels) for _ in self.in_channels)
        self.ups = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                               nn.ReLU()) for _ in range(num_upsample))
        self.depth_pred = nn.Conv2d(channels, 1, 3, padding=1)
        losses = [loss_decode] if isinstance(loss_decode, dict) else list(loss_decode)
        self.loss_decode = nn.ModuleList(build_loss(c) for c in losses)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        feats = [inputs[i] for i in self.in_index]
        x = None
        for feat, proj, fuse in zip(reversed(feats), reversed(self.projs),
                                    reversed(self.fusions)):
            y = proj(feat)
            if x is not None:
                y = y + resize(x, size=y.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
            x = fuse(y)
        for up in self.ups:
            x = up(F.interpolate(x, scale_factor=2, mode='bilinear',
                                 align_corners=self.align_corners))
        return torch.sigmoid(self.depth_pred(x)) * self.max_depth

    def loss_by_feat(self, pred: torch.Tensor, batch_data_samples: list) -> dict:
        if not all('gt_depth_map' in s for s in batch_data_samples):
            raise KeyError('ViTDepthHead needs gt_depth_map in every data sample: add '
                           "dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3) to the "
                           'pipeline.')
        gt = torch.stack([s.gt_depth_map.data for s in batch_data_samples])
        pred = resize(pred, size=gt.shape[2:], mode='bilinear', align_corners=self.align_corners)
        losses = {}
        for loss in self.loss_decode:
            value = loss(pred, gt)
            losses[loss.loss_name] = losses.get(loss.loss_name, 0) + value
        return losses
