"""mmseg's ``CrossEntropyLoss`` with class weights on labels that hold the ignore index.

mmseg 1.2.2's ``cross_entropy`` computes the class-weighted average factor by indexing
``class_weight`` with every label value, the ignore index (255) included, so a loss with
``class_weight`` fails with ``IndexError: index 255 is out of bounds`` on any batch that has
ignored pixels: padded images, and Win-Win's random-token ablation, which ignores the
labels outside the kept tokens. This loss gives that average factor directly: the sum of
the class weights of the non-ignored pixels (PyTorch's own weighted mean,
``F.cross_entropy(..., weight=w, ignore_index=i, reduction='mean')``; with
``avg_non_ignore=False`` ignored pixels count with weight 1, as mmseg counts every pixel
without class weights). Everything else is mmseg's class, and where mmseg's works (no
ignored pixel) the values are the same.
"""
from __future__ import annotations

import torch
from mmseg.models.losses import CrossEntropyLoss

from ...registry import register

__all__ = ['IgnoreAwareCrossEntropyLoss']


@register('MODELS')
class IgnoreAwareCrossEntropyLoss(CrossEntropyLoss):
    """``CrossEntropyLoss`` (mmseg) whose class-weighted mean accepts ignored pixels.

    Same arguments as mmseg's class; use it wherever a ``class_weight`` meets labels with
    the ignore index: ``loss_decode=dict(type='IgnoreAwareCrossEntropyLoss',
    class_weight=[...], avg_non_ignore=True)``.
    """

    def forward(self, cls_score, label, weight=None, avg_factor=None,
                reduction_override=None, ignore_index=-100, **kwargs):
        reduction = reduction_override if reduction_override else self.reduction
        if (self.class_weight is not None and avg_factor is None and reduction == 'mean'
                and not self.use_sigmoid and not self.use_mask and label.dim() >= 2):
            w = cls_score.new_tensor(self.class_weight)
            ignored = label == ignore_index
            per_pixel = w[label.masked_fill(ignored, 0)]
            per_pixel = per_pixel.masked_fill(ignored, 0.0 if self.avg_non_ignore else 1.0)
            if weight is not None:
                per_pixel = per_pixel * weight.float()
            avg_factor = per_pixel.sum().clamp_min(torch.finfo(per_pixel.dtype).eps)
        return super().forward(cls_score, label, weight=weight, avg_factor=avg_factor,
                               reduction_override=reduction_override,
                               ignore_index=ignore_index, **kwargs)
