"""``CheckedSegDataPreProcessor`` / ``CheckedDetDataPreprocessor``: mmseg's and mmdet's data
preprocessors, unchanged, after the checks of :mod:`.checks` on each incoming batch.

Why: a NaN pixel silently turns a whole prediction into class 0, an RGBA image or an image
larger than ``size`` fails deep in a broadcast or ``torch.stack``, and a label value >=
the class count fails as torch's "Target 39 is out of bounds" with no file named. Here
each of these is an error naming the image (``img_path``) and the fix.
"""
from __future__ import annotations

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmseg.models.data_preprocessor import SegDataPreProcessor

from ...registry import register
from .checks import check_image_batch, check_label_range

__all__ = ['CheckedSegDataPreProcessor', 'CheckedDetDataPreprocessor']


def _channels(pre) -> int | None:
    return int(pre.mean.numel()) if getattr(pre, '_enable_normalize', False) else None


@register('MODELS')
class CheckedSegDataPreProcessor(SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` after input checks.

    Args:
        num_classes: label values must lie in ``0 .. num_classes - 1`` (or be
            ``ignore_index``) in training; mmwinwin's segmentors set it from their decode
            head. ``None``: no label check.
        ignore_index: the label value the loss ignores (255).
        **kwargs: those of ``SegDataPreProcessor``.
    """

    def __init__(self, *args, num_classes: int | None = None, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples')
        check_image_batch(data['inputs'], samples, channels=_channels(self),
                          max_size=self.size if training else None,
                          who='data preprocessor (CheckedSegDataPreProcessor)')
        if training and self.num_classes is not None:
            check_label_range(samples, self.num_classes, self.ignore_index)
        return super().forward(data, training)


@register('MODELS')
class CheckedDetDataPreprocessor(DetDataPreprocessor):
    """mmdet's ``DetDataPreprocessor`` after input checks (empty, wrong channel count,
    non-finite images)."""

    def forward(self, data: dict, training: bool = False) -> dict:
        check_image_batch(data['inputs'], data.get('data_samples'), channels=_channels(self),
                          who='data preprocessor (CheckedDetDataPreprocessor)')
        return super().forward(data, training)
