"""Optical flow on mmengine: a binocular RoPE ViT trained with Win-Win windows."""
from .data_preprocessor import FlowDataPreprocessor
from .estimator import WinWinFlowEstimator

__all__ = ['FlowDataPreprocessor', 'WinWinFlowEstimator']
