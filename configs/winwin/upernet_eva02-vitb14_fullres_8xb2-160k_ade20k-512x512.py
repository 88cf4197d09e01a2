# EVA-02 ViT-B/14 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Full-resolution baseline (512x512 crops, all tokens) of
# winwin-2x13_upernet_eva02-vitb14_8xb2-160k_ade20k-512x512.py.
# Weights and licence: ../_base_/models/eva02-vitb14_backbone.py.
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-160k_ade20k-512x512.py', '../_base_/models/eva02-vitb14_backbone.py']
model = dict(
    backbone={{_base_.eva02_vitb14_backbone}})
