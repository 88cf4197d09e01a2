from .expedited_vit import ExpeditedMMSegViT, ExpeditedRoPEViT, use_fused_attention
from .expedited_windowed import ExpeditedSwinTransformer, ExpeditedWindowedRoPEViT
from .rope_vit import RoPEViT
from .windowed_rope_vit import WindowedRoPEViT

__all__ = ['RoPEViT', 'WindowedRoPEViT', 'ExpeditedRoPEViT', 'ExpeditedMMSegViT',
           'use_fused_attention', 'ExpeditedWindowedRoPEViT', 'ExpeditedSwinTransformer']
