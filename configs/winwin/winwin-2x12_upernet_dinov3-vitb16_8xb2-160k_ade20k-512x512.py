# DINOv3 ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 12x12 tokens (288 of 1024 tokens) of each 512x512 crop, test whole.
# Baselines beside it: upernet_dinov3-vitb16_fullres_* (full resolution) and
# upernet_dinov3-vitb16_crop272_* (one low-resolution crop, the same token budget).
# Weights and licence: ../_base_/models/dinov3-vitb16_backbone.py.
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/models/dinov3-vitb16_backbone.py']
model = dict(backbone={{_base_.dinov3_vitb16_backbone}})
