from .rope_vit import RoPEViT
from .windowed_rope_vit import WindowedRoPEViT

__all__ = ['RoPEViT', 'WindowedRoPEViT']
