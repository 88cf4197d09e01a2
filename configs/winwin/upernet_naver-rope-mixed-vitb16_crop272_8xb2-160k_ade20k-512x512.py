# RoPE-ViT (naver-ai, ECCV 2024) RoPE-Mixed ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2
# images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Low-resolution-crop baseline: one 272x272 crop (17x17 = 289 tokens, about the Win-Win budget of
# 2x12x12 = 288), test whole.
# Weights and licence: ../_base_/models/naver-rope-mixed-vitb16_backbone.py.
_base_ = ['./upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py', '../_base_/models/naver-rope-mixed-vitb16_backbone.py']
model = dict(
    backbone={{_base_.naver_rope_mixed_vitb16_backbone}})
