"""Registered segmentors / estimators."""
from .winwin import WinWinDepthEstimator, WinWinEncoderDecoder, WinWinMixin

__all__ = ['WinWinEncoderDecoder', 'WinWinDepthEstimator', 'WinWinMixin']
