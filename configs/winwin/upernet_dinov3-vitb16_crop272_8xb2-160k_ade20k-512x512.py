# DINOv3 ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Low-resolution-crop baseline: one 272x272 crop (289 tokens, the Win-Win budget), test whole.
# Weights: the upstream DINOv3 release file (DINOv3 licence; request access at
# https://github.com/facebookresearch/dinov3) or timm's vit_base_patch16_dinov3 weights, read
# as they are, or converted once by tools/model_converters/rope_family2mmwinwin.py. The window
# tokens keep their coordinates normalised by the full image (DINOv3's RoPE convention).
_base_ = ['./upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py']
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
