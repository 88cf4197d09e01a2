from .expedited_vit import ExpeditedMMSegViT, ExpeditedRoPEViT, use_fused_attention
from .rope_vit import RoPEViT

__all__ = ['RoPEViT', 'ExpeditedRoPEViT', 'ExpeditedMMSegViT', 'use_fused_attention']
