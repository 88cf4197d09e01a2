"""Packers for Win-Win pipelines: mmseg's ``PackSegInputs`` / mmdet's ``PackDetInputs``
whose default ``meta_keys`` also carry the keys :class:`WinWinWindows` writes.

Why: the window placement travels to the model through the data sample's metainfo, and a
config that forgets one key in a hand-written ``meta_keys`` tuple only fails inside the
model. ``dict(type='WinWinPackSegInputs')`` needs no list; an explicit ``meta_keys`` still
wins, and the WinWin keys are added to it.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence

from mmdet.datasets.transforms import PackDetInputs
from mmseg.datasets.transforms import PackSegInputs

from ...registry import register
from .windows import WINWIN_META_KEYS

__all__ = ['WinWinPackSegInputs', 'WinWinPackDetInputs']


def _with_winwin_keys(packer: type, meta_keys: Sequence[str] | None) -> tuple[str, ...]:
    if meta_keys is None:  # the host packer's own defaults
        meta_keys = inspect.signature(packer.__init__).parameters['meta_keys'].default
    keys = tuple(meta_keys)
    return keys + tuple(k for k in WINWIN_META_KEYS if k not in keys)


@register('TRANSFORMS')
class WinWinPackSegInputs(PackSegInputs):
    """``PackSegInputs`` (segmentation and depth) plus the Win-Win window metainfo."""

    def __init__(self, meta_keys: Sequence[str] | None = None) -> None:
        super().__init__(meta_keys=_with_winwin_keys(PackSegInputs, meta_keys))


@register('TRANSFORMS')
class WinWinPackDetInputs(PackDetInputs):
    """``PackDetInputs`` (detection, instance, panoptic) plus the Win-Win window metainfo."""

    def __init__(self, meta_keys: Sequence[str] | None = None) -> None:
        super().__init__(meta_keys=_with_winwin_keys(PackDetInputs, meta_keys))
