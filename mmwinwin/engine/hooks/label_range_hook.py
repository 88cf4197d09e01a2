"""``LabelRangeHook``: a checked segmentation preprocessor learns its model's class count.

``CheckedSegDataPreProcessor`` refuses a label value outside ``0 .. num_classes - 1`` (other
than the ignore index) with the file, the value and the count, instead of torch's "Target 39
is out of bounds" deep inside the loss. A preprocessor cannot see the model that holds it, so
mmwinwin's Win-Win segmentors hand it their decode head's count; for any other segmentor
(mmseg's ``EncoderDecoder`` in the baseline configs) this hook does the same before the run,
unless the config set ``num_classes`` itself. Every config of this project declares it
(``configs/_base_/mmwinwin_hooks.py``).
"""
from __future__ import annotations

from mmengine.hooks import Hook

from ...registry import register

__all__ = ['LabelRangeHook']


@register('HOOKS')
class LabelRangeHook(Hook):
    """Give a checked data preprocessor its model's class count and ignore index."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model
        model = getattr(model, 'module', model)  # (CPU)DistributedDataParallel
        pre = getattr(model, 'data_preprocessor', None)
        head = getattr(model, 'decode_head', None)
        if pre is None or head is None or not hasattr(pre, 'num_classes'):
            return
        if pre.num_classes is None and hasattr(head, 'num_classes'):
            pre.num_classes = int(head.num_classes)
            pre.ignore_index = int(getattr(head, 'ignore_index', pre.ignore_index))
