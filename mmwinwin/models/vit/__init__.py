"""Registered RoPE ViT backbones (plain and ViTDet-style) and ViTDet's simple FPN."""
from .rope_vit import RoPEViT
from .simple_fpn import SimpleFPN
from .vitdet import RoPEViTDet

__all__ = ['RoPEViT', 'RoPEViTDet', 'SimpleFPN']
