# DINOv3 ViT-B/16 + UPerNet, bdd100k-720x1280, 8 GPUs x 2 images, 80k iterations, AdamW with
# layer-wise LR decay. Win-Win: 2 windows of 22x22 tokens (968 of 3600) of each 720x1280 image, test whole.
# The same recipe as the RoPE ViT-B/16 config it inherits (winwin-2x22_upernet_rope-vit-b16_8xb2-80k_bdd100k-720x1280.py); only the
# backbone changes (weights and licence: ../_base_/models/dinov3-vitb16_backbone.py).
_base_ = ['./winwin-2x22_upernet_rope-vit-b16_8xb2-80k_bdd100k-720x1280.py', '../_base_/models/dinov3-vitb16_backbone.py']
model = dict(backbone={{_base_.dinov3_vitb16_backbone}})
