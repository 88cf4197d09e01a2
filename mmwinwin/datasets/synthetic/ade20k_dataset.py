"""``SyntheticADE20KDataset``: mmseg's ADE20K loader with the synthetic classes.

The on-disk layout and the loading code are exactly mmseg's ``ADE20KDataset``; only
the class list differs (see ``mmwinwin.datasets.synthetic.ade20k``).
"""
from mmseg.datasets import ADE20KDataset

from ...registry import register
from .ade20k import synthetic_ade20k_classes

_PALETTE = [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3],
            [120, 120, 80], [140, 140, 140], [204, 5, 255], [230, 230, 230]]


@register('DATASETS')
class SyntheticADE20KDataset(ADE20KDataset):
    """ADE20K layout, background + 2 object classes per scene (3 scenes by default)."""

    METAINFO = dict(classes=tuple(synthetic_ade20k_classes(3)), palette=_PALETTE[:7])
