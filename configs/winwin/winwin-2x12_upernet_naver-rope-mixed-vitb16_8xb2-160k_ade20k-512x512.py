# RoPE-ViT (naver-ai, ECCV 2024) RoPE-Mixed ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2
# images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 12x12 tokens (288 of the 32x32 = 1024 tokens) of each 512x512 crop, test
# whole. Baselines beside it: upernet_naver-rope-mixed-vitb16_fullres_* (full resolution) and
# upernet_naver-rope-mixed-vitb16_crop272_* (one low-resolution crop of 17x17 = 289 tokens).
# Not the project's own RoPE ViT (rope-vit-b16 configs): naver's DeiT-III ViT with a cls token,
# layer scale and RoPE-Mixed (frequencies learned per block and head, on integer (x, y) token
# indices of the full image, so the window tokens keep their full-image positions).
# Weights and licence: ../_base_/models/naver-rope-mixed-vitb16_backbone.py.
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/models/naver-rope-mixed-vitb16_backbone.py']
model = dict(
    backbone={{_base_.naver_rope_mixed_vitb16_backbone}})
