"""Registered decode heads."""
from .vit_depth_head import ViTDepthHead

__all__ = ['ViTDepthHead']
