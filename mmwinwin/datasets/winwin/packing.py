"""Packers for Win-Win pipelines: mmseg's ``PackSegInputs`` / mmdet's ``PackDetInputs``
whose default ``meta_keys`` also carry the keys :class:`WinWinWindows` writes.

Why: the window placement travels to the model through the data sample's metainfo, and a
config that forgets one key in a hand-written ``meta_keys`` tuple only fails inside the
model. ``dict(type='WinWinPackSegInputs')`` needs no list; an explicit ``meta_keys`` still
wins, and the WinWin keys are added to it.

``pixels`` chooses what the packed ``inputs`` holds:

* ``'image'`` (default): the whole image, as the host packers do. The Win-Win model
  embeds only the windows' pixels of it.
* ``'windows'``: a compact **canvas** holding only the windows' pixel blocks, side by side
  (:func:`~mmwinwin.layers.winwin.windows.canvas_layout`), and ``winwin_canvas`` in the
  metainfo: each window's ``(top, left)`` in the canvas, in tokens. The canvas is still one
  ``(3, H', W')`` image, so mmseg's / mmdet's own data preprocessors normalise, pad and move
  only the windows' pixels (a 1024x1024 image with two 28x28-token windows of patch 16:
  a 448x896 canvas, 38 % of the pixels). Targets stay whole (the model crops them per
  window), the full-image token positions come from ``winwin_windows`` and the full grid from
  ``winwin_grid``. Training only: the test pipeline packs whole images.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
from mmdet.datasets.transforms import PackDetInputs
from mmseg.datasets.transforms import PackSegInputs

from ...layers.winwin.windows import CANVAS_META_KEY, canvas_layout, crop_windows
from ...registry import register
from .windows import WINWIN_META_KEYS

__all__ = ['WinWinPackSegInputs', 'WinWinPackDetInputs', 'CANVAS_META_KEY', 'cut_canvas']

_PIXELS = ('image', 'windows')


def _with_winwin_keys(packer: type, meta_keys: Sequence[str] | None,
                      extra: Sequence[str] = ()) -> tuple[str, ...]:
    if meta_keys is None:  # the host packer's own defaults
        meta_keys = inspect.signature(packer.__init__).parameters['meta_keys'].default
    keys = tuple(meta_keys)
    return keys + tuple(k for k in tuple(WINWIN_META_KEYS) + tuple(extra) if k not in keys)


def cut_canvas(img: np.ndarray, windows: Sequence[Sequence[int]],
               patch_size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The canvas of ``img`` (``(H, W)`` or ``(H, W, C)``): each window's pixel block
    copied to its place of :func:`canvas_layout` (zeros where a shorter window leaves
    room). Returns the canvas and the windows' ``(top, left)`` in it, in tokens."""
    offsets, (ch, cw) = canvas_layout(windows)
    p = int(patch_size)
    canvas = np.zeros((ch * p, cw * p) + tuple(img.shape[2:]), dtype=img.dtype)
    # crop_windows works on the last two axes; an HWC image is viewed as CHW
    chw = img if img.ndim == 2 else np.moveaxis(img, -1, 0)
    for (top, left), block, (_, _, h, w) in zip(
            offsets, crop_windows(chw, windows, p), windows):
        block = block if img.ndim == 2 else np.moveaxis(block, 0, -1)
        canvas[top * p:(top + h) * p, left * p:(left + w) * p] = block
    return canvas, offsets


class _WindowPixels:
    """The ``pixels`` option shared by both packers."""

    def _init_pixels(self, pixels: str) -> None:
        if pixels not in _PIXELS:
            raise ValueError(f"{type(self).__name__} pixels must be 'image' (pack the whole "
                             f"image) or 'windows' (pack a canvas of only the Win-Win windows' "
                             f'pixels), got {pixels!r}.')
        self.pixels = pixels

    def _canvas_keys(self) -> tuple[str, ...]:
        return (CANVAS_META_KEY,) if self.pixels == 'windows' else ()

    def transform(self, results: dict) -> dict:
        if self.pixels == 'windows':
            results = self._to_canvas(results)
        return super().transform(results)

    def _to_canvas(self, results: dict) -> dict:
        name = type(self).__name__
        if 'winwin_window_stages' in results:
            raise ValueError(
                f"{name}(pixels='windows') packs one set of windows' pixels, but "
                'WinWinWindows(progressive_sizes=...) drew one set per stage of training, '
                f"which the model picks: use {name}(pixels='image') (the default) with "
                'progressive sizes, or a fixed window_size with canvases.')
        if 'winwin_windows' not in results:
            if 'winwin_token_index' in results:
                raise ValueError(
                    f"{name}(pixels='windows') packs the windows' pixels, but "
                    "WinWinWindows(mode='random_tokens') keeps tokens scattered over the whole "
                    f"image: use {name}(pixels='image') (the default) for that ablation.")
            raise KeyError(
                f"{name}(pixels='windows') needs the windows in the results: put "
                "dict(type='WinWinWindows', ...) before it in the training pipeline (the test "
                f"pipeline packs whole images: use {name}() or the host's packer there).")
        if results.get('img') is None:
            raise KeyError(f"{name}(pixels='windows') needs results['img'].")
        out = dict(results)
        out['img'], out[CANVAS_META_KEY] = cut_canvas(
            results['img'], results['winwin_windows'], int(results['winwin_patch_size']))
        return out

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, pixels={self.pixels!r})'


@register('TRANSFORMS')
class WinWinPackSegInputs(_WindowPixels, PackSegInputs):
    """``PackSegInputs`` (segmentation and depth) plus the Win-Win window metainfo.

    Args:
        meta_keys: as ``PackSegInputs``; the Win-Win keys are added.
        pixels: ``'image'`` (default: the whole image) or ``'windows'`` (a canvas of only
            the windows' pixels; the data preprocessor then needs ``size=None,
            size_divisor=<patch size>``, since a fixed ``size`` pads the canvas back to the
            whole image's size). See the module docstring.
    """

    def __init__(self, meta_keys: Sequence[str] | None = None, pixels: str = 'image') -> None:
        self._init_pixels(pixels)
        super().__init__(meta_keys=_with_winwin_keys(PackSegInputs, meta_keys, self._canvas_keys()))


@register('TRANSFORMS')
class WinWinPackDetInputs(_WindowPixels, PackDetInputs):
    """``PackDetInputs`` (detection, instance, panoptic) plus the Win-Win window metainfo.

    Args:
        meta_keys: as ``PackDetInputs``; the Win-Win keys are added.
        pixels: ``'image'`` (default: the whole image) or ``'windows'`` (a canvas of only
            the windows' pixels; drop a ``BatchFixedSizePad`` batch augment, which pads the
            canvas back to the whole image's size). See the module docstring.
    """

    def __init__(self, meta_keys: Sequence[str] | None = None, pixels: str = 'image') -> None:
        self._init_pixels(pixels)
        super().__init__(meta_keys=_with_winwin_keys(PackDetInputs, meta_keys, self._canvas_keys()))
