"""Data preprocessors that check each batch where it enters the model: mmseg's and mmdet's
preprocessors plus the checks of :mod:`.checks` (empty or non-finite images, channel count,
oversized images, out-of-range labels), each error naming the image file and the fix."""
from .checked import CheckedDetDataPreprocessor, CheckedSegDataPreProcessor
from .checks import check_image_batch, check_label_range

__all__ = ['CheckedSegDataPreProcessor', 'CheckedDetDataPreprocessor', 'check_image_batch',
           'check_label_range']
