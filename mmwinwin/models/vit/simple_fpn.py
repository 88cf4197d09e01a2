"""``SimpleFPN``: the ViTDet simple feature pyramid from one single-scale map.

From the stride-16 map of a plain ViT: two 2x2 deconvolutions (stride 4), one (stride
8), identity (16) and a 2x2 max-pool (32); each level then gets a 1x1 and a 3x3 conv
with LayerNorm over channels. ``num_outs`` > 4 adds max-pooled levels on top (stride
64, as Mask R-CNN's RPN expects).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from ...registry import register

_SCALES = (4.0, 2.0, 1.0, 0.5)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _upsample(in_ch: int, scale: float) -> nn.Module:
    if scale == 4.0:
        return nn.Sequential(nn.ConvTranspose2d(in_ch, in_ch // 2, 2, 2), LayerNorm2d(in_ch // 2),
                             nn.GELU(), nn.ConvTranspose2d(in_ch // 2, in_ch // 4, 2, 2))
    if scale == 2.0:
        return nn.ConvTranspose2d(in_ch, in_ch // 2, 2, 2)
    if scale == 1.0:
        return nn.Identity()
    return nn.MaxPool2d(2, 2)


@register('MODELS', hosts=False)  # ViTDet's project registers SimpleFPN in mmdet
class SimpleFPN(BaseModule):
    """Simple FPN (ViTDet) for mmdet and mmseg.

    Args:
        in_channels: channels of the backbone's single-scale map (an int, or a
            one-element list as mmdet configs write it).
        out_channels: channels of every output level.
        scales: resampling factors of the pyramid levels, a subset of (4, 2, 1, 0.5).
        num_outs: number of outputs; levels beyond ``len(scales)`` are max-pooled.
        in_index: which backbone output to use (the last by default).
    """

    def __init__(self, in_channels: int | Sequence[int], out_channels: int = 256,
                 scales: Sequence[float] = _SCALES, num_outs: int = 4, in_index: int = -1,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        if not isinstance(in_channels, int):
            in_channels = list(in_channels)
            if len(in_channels) != 1:
                raise ValueError(f'SimpleFPN takes one input map; got in_channels='
                                 f'{in_channels}. Use a single-scale backbone output.')
            in_channels = in_channels[0]
        bad = [s for s in scales if float(s) not in _SCALES]
        if bad:
            raise ValueError(f'Unsupported scales {bad}; choose from {_SCALES}.')
        if in_channels % 4:
            raise ValueError(f'in_channels ({in_channels}) must be divisible by 4.')
        if num_outs < len(scales):
            raise ValueError(f'num_outs ({num_outs}) must be >= len(scales) ({len(scales)}).')
        self.scales = tuple(float(s) for s in scales)
        self.num_outs = num_outs
        self.in_index = in_index
        self.resample = nn.ModuleList()
        self.lateral = nn.ModuleList()
        self.output = nn.ModuleList()
        for s in self.scales:
            ch = {4.0: in_channels // 4, 2.0: in_channels // 2}.get(s, in_channels)
            self.resample.append(_upsample(in_channels, s))
            self.lateral.append(nn.Sequential(nn.Conv2d(ch, out_channels, 1, bias=False),
                                              LayerNorm2d(out_channels)))
            self.output.append(nn.Sequential(
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                LayerNorm2d(out_channels)))

    def forward(self, inputs: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = inputs if isinstance(inputs, torch.Tensor) else inputs[self.in_index]
        outs = [out(lat(res(x))) for res, lat, out in
                zip(self.resample, self.lateral, self.output)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
