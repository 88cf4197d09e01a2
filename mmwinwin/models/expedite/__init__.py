"""Expedited backbones (RoPE ViT, ViTDet, and the mmseg ViT / mmdet Swin host adapters)
and the segmentor that places clustering in the decode head."""
from .encoder_decoder import ExpeditedEncoderDecoder
from .partitioned import ExpeditedRoPEViTDet, ExpeditedSwinTransformer
from .vit import ExpeditedMMSegViT, ExpeditedRoPEViT, use_fused_attention

__all__ = ['ExpeditedRoPEViT', 'ExpeditedMMSegViT', 'use_fused_attention',
           'ExpeditedRoPEViTDet', 'ExpeditedSwinTransformer', 'ExpeditedEncoderDecoder']
