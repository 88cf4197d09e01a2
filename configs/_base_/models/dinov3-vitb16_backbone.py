# DINOv3 ViT-B/16 backbone for the Win-Win / baseline configs (used as
# backbone={{_base_.dinov3_vitb16_backbone}}; unique names, so it can be a second base).
# Weights: the upstream DINOv3 release file (DINOv3 licence; request access at
# https://github.com/facebookresearch/dinov3) or timm's vit_base_patch16_dinov3 weights, read
# as they are, or converted once by tools/model_converters/rope_family2mmwinwin.py. Win-Win
# window tokens keep their coordinates normalised by the full image (DINOv3's RoPE convention).
dinov3_vitb16_checkpoint = 'checkpoints/dinov3_vitb16_pretrain_lvd1689m.pth'  # your download
dinov3_vitb16_backbone = dict(
    _delete_=True,
    type='RoPEViT',
    arch='dinov3-vitb16',  # patch 16, 4 register tokens, layer scale, DINOv3 RoPE
    out_indices=(2, 5, 8, 11),
    drop_path_rate=0.1,
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint=dinov3_vitb16_checkpoint))
