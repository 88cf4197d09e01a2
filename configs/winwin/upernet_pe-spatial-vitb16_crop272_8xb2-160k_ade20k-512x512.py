# PE-Spatial ViT-B/16 (Perception Encoder, Meta 2025; pre-trained at 512) + UPerNet on ADE20K
# 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Low-resolution-crop baseline: one 272x272 crop (17x17 = 289 tokens, about the Win-Win budget of
# 2x12x12 = 288), test whole.
# Weights and licence: ../_base_/models/pe-spatial-vitb16_backbone.py.
_base_ = ['./upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py', '../_base_/models/pe-spatial-vitb16_backbone.py']
model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone={{_base_.pe_spatial_vitb16_backbone}})
