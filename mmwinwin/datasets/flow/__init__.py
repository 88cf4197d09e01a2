"""Optical-flow datasets (Sintel, FlyingChairs, Spring, KITTI) and pair transforms."""
from .datasets import FlyingChairsDataset, KittiFlowDataset, SintelFlowDataset, SpringFlowDataset
from .transforms import FlowRandomCrop, FlowRandomFlip, FlowResize, LoadFlowPair, PackFlowInputs

__all__ = ['SintelFlowDataset', 'FlyingChairsDataset', 'SpringFlowDataset', 'KittiFlowDataset',
           'LoadFlowPair', 'FlowRandomCrop', 'FlowRandomFlip', 'FlowResize', 'PackFlowInputs']
