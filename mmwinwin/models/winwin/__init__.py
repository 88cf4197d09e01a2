"""Win-Win segmentors / depth estimators (train on windows, test on the whole image)."""
from .segmentors import WinWinDepthEstimator, WinWinEncoderDecoder, WinWinMixin

__all__ = ['WinWinEncoderDecoder', 'WinWinDepthEstimator', 'WinWinMixin']
