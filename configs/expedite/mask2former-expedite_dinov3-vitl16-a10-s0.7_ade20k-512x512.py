# Expedite on a trained DINOv3 ViT-L/16 + Mask2Former (ADE20K semantic, through mmseg), no
# fine-tuning: clustering after block 10 of 24 to about 0.7 of the token grid per side,
# reconstruction before the output (the paper's ViT-L placement). DINOv3 has register tokens,
# so the backbone is the plain (global-attention) RoPE ViT with a simple FPN, not the ViTDet
# variant; registers and cls are never clustered.
# Weights: your Mask2Former trained on the DINOv3 ViT-L/16 backbone (init from the upstream
# dinov3_vitl16 release, DINOv3 licence: https://github.com/facebookresearch/dinov3, or timm's
# vit_large_patch16_dinov3), set as load_from; the plain model's checkpoint loads unchanged.
_base_ = ['../vitdet/mask2former_rope-vit-b-win14_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ExpeditedRoPEViT',
        arch='dinov3-vitl16',
        out_indices=(23, ),
        drop_path_rate=0.3,
        init_cfg=None,
        expedite=dict(alpha=10, cluster_scale=0.7, iters=5, window=5, temperature=0.02, k=20)),
    neck=dict(type='mmwinwin.SimpleFPN', in_channels=1024, out_channels=256, num_outs=4))
load_from = None  # your trained DINOv3-L Mask2Former checkpoint
