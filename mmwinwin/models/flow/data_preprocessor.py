"""Data preprocessor for image pairs: normalise both frames, pad the batch together."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor

from ...registry import register
from ..preprocessors.checks import check_image_batch

__all__ = ['FlowDataPreprocessor']


@register('MODELS')
class FlowDataPreprocessor(BaseDataPreprocessor):
    """Turn ``inputs`` (a list of uint8 ``(2, 3, H, W)`` pairs from :class:`PackFlowInputs`)
    into a float ``(B, 2, 3, Hp, Wp)`` batch: ``(x - mean) / std`` per RGB channel, then
    zero padding (right, bottom) to the largest pair and a multiple of ``size_divisor``.
    Each sample keeps its unpadded ``img_shape`` in its metainfo; ``pad_shape`` is added.
    An empty pair or one holding NaN / inf raises an error naming its ``img1_path``.
    """

    def __init__(self, mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375), size_divisor: int = 16,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 values (RGB), got {mean}, {std}.')
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), False)
        self.size_divisor = int(size_divisor)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs) if inputs.dim() == 5 else [inputs]
        for x in inputs:
            if x.dim() != 4 or x.shape[0] != 2 or x.shape[1] != 3:
                raise ValueError(f'FlowDataPreprocessor expects (2, 3, H, W) image pairs (pack '
                                 f'them with PackFlowInputs), got {tuple(x.shape)}.')
        check_image_batch(inputs, data.get('data_samples'), image_dims=4,
                          who='data preprocessor (FlowDataPreprocessor)')
        d = self.size_divisor
        H = max(x.shape[-2] for x in inputs)
        W = max(x.shape[-1] for x in inputs)
        H, W = -(-H // d) * d, -(-W // d) * d
        batch = []
        for x in inputs:
            x = (x.float() - self.mean) / self.std
            batch.append(F.pad(x, (0, W - x.shape[-1], 0, H - x.shape[-2])))
        samples = data.get('data_samples')
        if samples is not None:
            for s in samples:
                s.set_metainfo(dict(pad_shape=(H, W)))
        return dict(inputs=torch.stack(batch), data_samples=samples)
