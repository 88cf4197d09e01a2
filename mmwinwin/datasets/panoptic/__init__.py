"""COCO panoptic annotation loading."""
from .loading import LoadPanopticAnnotations

__all__ = ['LoadPanopticAnnotations']
