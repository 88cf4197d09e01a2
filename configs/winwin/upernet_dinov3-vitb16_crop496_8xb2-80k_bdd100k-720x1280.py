# DINOv3 ViT-B/16 + UPerNet, bdd100k-720x1280, 8 GPUs x 2 images, 80k iterations, AdamW with
# layer-wise LR decay. Low-resolution crop baseline: one 496x496 crop (961 tokens, about the Win-Win budget), test whole.
# The same recipe as the RoPE ViT-B/16 config it inherits (upernet_rope-vit-b16_crop496_8xb2-80k_bdd100k-720x1280.py); only the
# backbone changes (weights and licence: ../_base_/models/dinov3-vitb16_backbone.py).
_base_ = ['./upernet_rope-vit-b16_crop496_8xb2-80k_bdd100k-720x1280.py', '../_base_/models/dinov3-vitb16_backbone.py']
model = dict(backbone={{_base_.dinov3_vitb16_backbone}})
