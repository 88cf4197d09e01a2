# Expedite on a trained DINOv3 ViT-L/16 + UPerNet (ADE20K 512x512), no fine-tuning: token
# clustering after block 10 of 24 to about 0.7 of the 32x32 token grid per side (22x22
# clusters), reconstruction before each later output -- the paper's ViT-L placement
# (Segmenter ViT-L: alpha 10, 28x28 of 40x40). Clusters carry the assignment-weighted mean
# of their tokens' DINOv3 coordinates (normalised to [-1, 1] by the full image); the 4 register
# tokens and the cls token are never clustered.
# Weights: your UPerNet trained on the DINOv3 ViT-L/16 backbone (init from the upstream
# dinov3_vitl16 release, DINOv3 licence: https://github.com/facebookresearch/dinov3, or timm's
# vit_large_patch16_dinov3), set as load_from; the plain model's checkpoint loads unchanged.
_base_ = '../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py'
dims = 1024
model = dict(
    backbone=dict(
        _delete_=True,
        type='ExpeditedRoPEViT',
        arch='dinov3-vitl16',  # patch 16, 4 register tokens, layer scale, DINOv3 RoPE
        out_indices=(5, 11, 17, 23),
        drop_path_rate=0.3,
        init_cfg=None,
        expedite=dict(alpha=10, cluster_scale=0.7, iters=5, window=5, temperature=0.02, k=20)),
    neck=dict(in_channels=[dims] * 4, out_channels=dims),
    decode_head=dict(in_channels=[dims] * 4),
    auxiliary_head=dict(in_channels=dims))
load_from = None  # your trained DINOv3-L UPerNet checkpoint
