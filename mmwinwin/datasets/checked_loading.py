"""``CheckedLoadImageFromFile`` / ``CheckedLoadAnnotations``: mmcv's image loader and mmseg's
annotation loader, unchanged, whose decoding failures name the file and the fix.

Why: a 0-byte image fails inside OpenCV (``!buf.empty() in function 'imdecode_'``) and a
corrupt annotation PNG inside PIL (``cannot identify image file <_io.BytesIO ...>``),
neither naming the file. Nothing is added on the normal path: the file is only
inspected (its size) after the host's decoder has failed.
"""
from __future__ import annotations

import os

from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations

from ..registry import register

__all__ = ['CheckedLoadImageFromFile', 'CheckedLoadAnnotations', 'undecodable_file_error']

# what the decoders raise on bad bytes: PIL (OSError, incl. UnidentifiedImageError),
# OpenCV (cv2.error), turbojpeg / tifffile (ValueError, OSError), a None image (AttributeError,
# TypeError) or mmcv's own "failed to load image" assertion.
_DECODE_ERRORS = (OSError, ValueError, AttributeError, TypeError, AssertionError)
try:
    import cv2
    _DECODE_ERRORS = _DECODE_ERRORS + (cv2.error,)
except ImportError:  # pragma: no cover
    pass


def undecodable_file_error(path: str, what: str, err: BaseException) -> ValueError:
    """The error for a file the decoder could not read: empty, or corrupt / not an image."""
    try:
        size = os.path.getsize(path)
    except (OSError, TypeError):
        size = None
    if size == 0:
        return ValueError(f'{what} file {path} is empty (0 bytes), e.g. an interrupted copy or '
                          'download: copy or extract it again, or remove it (and its pair) '
                          'from the dataset.')
    return ValueError(f'{what} file {path} could not be decoded ({type(err).__name__}: {err}); '
                      'it is corrupt or not an image: copy or extract it again, or remove it '
                      '(and its pair) from the dataset.')


@register('TRANSFORMS')
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile``; a file it cannot decode raises a ``ValueError`` naming
    the file (empty or corrupt) and the fix. Same arguments (``ignore_empty=True`` still
    skips such files)."""

    def transform(self, results: dict) -> dict | None:
        try:
            return super().transform(results)
        except FileNotFoundError:
            raise
        except _DECODE_ERRORS as err:
            raise undecodable_file_error(results.get('img_path'), 'Image', err) from err


@register('TRANSFORMS')
class CheckedLoadAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations``; an annotation map it cannot decode raises a
    ``ValueError`` naming the file (empty or corrupt) and the fix. Same arguments."""

    def _load_seg_map(self, results: dict) -> None:
        try:
            super()._load_seg_map(results)
        except FileNotFoundError:
            raise
        except AssertionError:  # mmseg's reduce_zero_label consistency check: its own message
            raise
        except _DECODE_ERRORS as err:
            raise undecodable_file_error(results.get('seg_map_path'), 'Annotation',
                                         err) from err
