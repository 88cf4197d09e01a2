from .rope_vit import RoPEViT

__all__ = ['RoPEViT']
