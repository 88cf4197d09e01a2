"""Win-Win models (train on windows, test on the whole image): segmentors and depth
estimators (mmseg), detectors (mmdet), and the one cropping of targets per window."""
from .detectors import WinWinDetMixin, WinWinMask2Former, WinWinTwoStageDetector, WindowFeatures
from .segmentors import WinWinDepthEstimator, WinWinEncoderDecoder, WinWinMixin
from .window_targets import BorderRule, crop_sample_to_window

__all__ = ['WinWinEncoderDecoder', 'WinWinDepthEstimator', 'WinWinMixin', 'WinWinDetMixin',
           'WinWinTwoStageDetector', 'WinWinMask2Former', 'WindowFeatures', 'BorderRule',
           'crop_sample_to_window']
