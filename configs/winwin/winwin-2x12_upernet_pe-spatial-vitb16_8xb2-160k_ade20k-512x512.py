# PE-Spatial ViT-B/16 (Perception Encoder, Meta 2025; pre-trained at 512) + UPerNet on ADE20K
# 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 12x12 tokens (288 of the 32x32 = 1024 tokens) of each 512x512 crop, test
# whole. Baselines beside it: upernet_pe-spatial-vitb16_fullres_* (full resolution) and
# upernet_pe-spatial-vitb16_crop272_* (one low-resolution crop of 17x17 = 289 tokens).
# PE rotates by integer (x, y) token indices of the full image + 1 (past its cls token), so the
# window tokens keep their full-image positions; its absolute position embedding is read at
# them too.
# Weights and licence: ../_base_/models/pe-spatial-vitb16_backbone.py.
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/models/pe-spatial-vitb16_backbone.py']
model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone={{_base_.pe_spatial_vitb16_backbone}})
