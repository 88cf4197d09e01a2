# DINOv3 ViT-B/16 + UPerNet, cityscapes-1024x2048, 8 GPUs x 2 images, 80k iterations, AdamW with
# layer-wise LR decay. Win-Win: 2 windows of 32x32 tokens (2048 of 8192) of each 1024x2048 image, test whole.
# The same recipe as the RoPE ViT-B/16 config it inherits (winwin-2x32_upernet_rope-vit-b16_8xb2-80k_cityscapes-1024x2048.py); only the
# backbone changes (weights and licence: ../_base_/models/dinov3-vitb16_backbone.py).
_base_ = ['./winwin-2x32_upernet_rope-vit-b16_8xb2-80k_cityscapes-1024x2048.py', '../_base_/models/dinov3-vitb16_backbone.py']
model = dict(backbone={{_base_.dinov3_vitb16_backbone}})
