"""Registered segmentors / estimators."""
from .expedited_encoder_decoder import ExpeditedEncoderDecoder
from .winwin import WinWinDepthEstimator, WinWinEncoderDecoder, WinWinMixin

__all__ = ['ExpeditedEncoderDecoder', 'WinWinEncoderDecoder', 'WinWinDepthEstimator',
           'WinWinMixin']
