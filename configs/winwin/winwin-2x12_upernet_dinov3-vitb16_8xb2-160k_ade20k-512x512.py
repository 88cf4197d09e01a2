# DINOv3 ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 12x12 tokens (288 of 1024 tokens) of each 512x512 crop, test whole.
# Baselines beside it: upernet_dinov3-vitb16_fullres_* (full resolution) and
# upernet_dinov3-vitb16_crop272_* (one low-resolution crop, the same token budget).
# Weights: the upstream DINOv3 release file (DINOv3 licence; request access at
# https://github.com/facebookresearch/dinov3) or timm's vit_base_patch16_dinov3 weights, read
# as they are, or converted once by tools/model_converters/rope_family2mmwinwin.py. The window
# tokens keep their coordinates normalised by the full image (DINOv3's RoPE convention).
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py']
dinov3_checkpoint = 'checkpoints/dinov3_vitb16_pretrain_lvd1689m.pth'  # your download
model = dict(
    backbone=dict(
        _delete_=True,
        type='RoPEViT',
        arch='dinov3-vitb16',  # patch 16, 4 register tokens, layer scale, DINOv3 RoPE
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=dinov3_checkpoint)))
