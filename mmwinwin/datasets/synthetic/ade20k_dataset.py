"""``SyntheticADE20KDataset``: mmseg's ADE20K loader with the synthetic classes.

The on-disk layout and the loading code are exactly mmseg's ``ADE20KDataset``; only
the class list differs (see ``mmwinwin.datasets.synthetic.ade20k``).

The default classes are those of 3 scenes. Data generated with 1 to 4 scenes is read with
``metainfo=dict(classes=synthetic_ade20k_classes(n))``: a scene's classes have the same
label values for every ``n`` (``2 * scene + 1``, ``2 * scene + 2`` after
``reduce_zero_label``), so such a class list needs no label mapping (mmseg's would refuse
the 4th scene's classes, absent from the default list), and it gets the first ``2 n + 1``
colours of the palette.
"""
import os.path as osp

from mmseg.datasets import ADE20KDataset

from ...registry import register
from ..data_root import check_data_dir, require_data_root
from .ade20k import synthetic_ade20k_classes

_LAYOUT = ('ADE20K layout: images/training, annotations/training, images/validation, ...; '
           'generate one with python tools/dataset_converters/generate_synthetic.py ade20k '
           'DATA_ROOT')
_PALETTE = [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3],
            [120, 120, 80], [140, 140, 140], [204, 5, 255], [230, 230, 230]]


def _generated_scenes(classes) -> int:
    """The scene count ``n`` if ``classes`` is ``synthetic_ade20k_classes(n)``, 1 <= n <= 4,
    else 0."""
    if classes is None:
        return 0
    classes = list(classes)
    n = (len(classes) - 1) // 2
    return n if 1 <= n <= 4 and classes == synthetic_ade20k_classes(n) else 0


@register('DATASETS')
class SyntheticADE20KDataset(ADE20KDataset):
    """ADE20K layout, background + 2 object classes per scene (3 scenes by default)."""

    METAINFO = dict(classes=tuple(synthetic_ade20k_classes(3)), palette=_PALETTE[:7])

    @classmethod
    def get_label_map(cls, new_classes=None):
        """No mapping for the generated classes of 1 to 4 scenes (their labels are already
        their indices); mmseg's mapping (a subset of the default classes) otherwise."""
        if _generated_scenes(new_classes):
            return None
        return super().get_label_map(new_classes)

    def _update_palette(self) -> list:
        classes = self._metainfo.get('classes', [])
        if _generated_scenes(classes) and len(self._metainfo.get('palette', [])) != len(classes):
            return _PALETTE[:len(classes)]
        return super()._update_palette()

    def load_data_list(self) -> list[dict]:
        """mmseg's listing; an image folder without images is an error naming it (instead
        of mmengine's "need at least one array to concatenate"); an image folder that is not
        there, or a data_root that is not set, is an error naming the setting (instead of
        ``FileNotFoundError: 'images/training'``)."""
        img_dir = self.data_prefix.get('img_path', '')
        if not self.ann_file and self.backend_args is None and '://' not in str(img_dir):
            if not self.data_root and not osp.isabs(img_dir):
                require_data_root(self, _LAYOUT)
            check_data_dir(self, img_dir, "data_prefix['img_path']", _LAYOUT)
        data_list = super().load_data_list()
        if not data_list:
            img_dir = self.data_prefix.get('img_path', '')
            raise FileNotFoundError(
                f'No images ending in {self.img_suffix!r} in {img_dir!r} (data_root '
                f'{self.data_root!r}{", ann_file " + repr(self.ann_file) if self.ann_file else ""}'
                '). Point data_root at a dataset in the ADE20K layout (images/training, '
                'annotations/training, ...) or generate one: python '
                'tools/dataset_converters/generate_synthetic.py ade20k DATA_ROOT.')
        return data_list
