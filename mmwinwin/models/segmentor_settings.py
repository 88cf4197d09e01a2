"""The keys an mmseg ``EncoderDecoder`` / ``DepthEstimator`` (and mmwinwin's segmentors
built on them) read from ``test_cfg`` and ``train_cfg``, and their check.

mmseg reads ``test_cfg.mode`` / ``crop_size`` / ``stride`` itself and hands both dicts to
the decode heads, of which only ``PointHead`` and ``SideAdapterCLIPHead`` read keys of
their own (mmseg 1.2.2). Any other key is a typo that would be silently ignored
(``mdoe='slide'`` evaluates in ``whole`` mode): :func:`check_segmentor_settings` refuses it
with the closest valid name.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..layers.settings import check_settings_keys

__all__ = ['SEGMENTOR_TEST_KEYS', 'HEAD_TEST_KEYS', 'HEAD_TRAIN_KEYS', 'check_segmentor_settings']

SEGMENTOR_TEST_KEYS = ('mode', 'crop_size', 'stride')
HEAD_TEST_KEYS = {'PointHead': ('subdivision_steps', 'subdivision_num_points', 'scale_factor')}
HEAD_TRAIN_KEYS = {
    'PointHead': ('num_points', 'oversample_ratio', 'importance_sample_ratio'),
    'SideAdapterCLIPHead': ('num_points', 'oversample_ratio', 'importance_sample_ratio',
                            'assigner')}


def _head_types(*heads: Any) -> set[str]:
    out = set()
    for head in heads:
        for h in (head if isinstance(head, (list, tuple)) else [head]):
            if isinstance(h, Mapping) and isinstance(h.get('type'), str):
                out.add(h['type'].split('.')[-1])
    return out


def check_segmentor_settings(test_cfg: Mapping | None, train_cfg: Mapping | None,
                             decode_head: Any = None, auxiliary_head: Any = None,
                             where: str = 'model') -> None:
    """Refuse ``test_cfg`` / ``train_cfg`` keys that neither the segmentor nor its heads
    read (:class:`~mmwinwin.layers.settings.UnknownSettingError`)."""
    heads = _head_types(decode_head, auxiliary_head)
    test_keys = set(SEGMENTOR_TEST_KEYS).union(*(HEAD_TEST_KEYS.get(h, ()) for h in heads))
    train_keys = set().union(*(HEAD_TRAIN_KEYS.get(h, ()) for h in heads))
    check_settings_keys(test_cfg, test_keys, f'{where}.test_cfg')
    check_settings_keys(train_cfg, train_keys, f'{where}.train_cfg')
