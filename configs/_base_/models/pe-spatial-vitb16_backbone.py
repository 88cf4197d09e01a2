# pe-spatial-vitb16 backbone for the Win-Win / baseline configs (used as
# backbone={{_base_.pe_spatial_vitb16_backbone}}; unique names, so it can be a second base).
# Weights: Meta's release, Apache-2.0 licence (https://github.com/facebookresearch/perception_models;
# HF hub facebook/PE-Spatial-B16-512, file PE-Spatial-B16-512.pt), or timm's
# vit_pe_spatial_base_patch16_512.fb weights; read as they are or converted once by
# tools/model_converters/rope_family2mmwinwin.py. PE normalises images with mean = std = 0.5.
pe_spatial_vitb16_checkpoint = 'checkpoints/PE-Spatial-B16-512.pt'  # your download
pe_spatial_vitb16_backbone = dict(
    _delete_=True,
    type='RoPEViT',
    arch='pe-spatial-vitb16',  # pre-norm, cls token, abs. pos. embed + PE RoPE
    out_indices=(2, 5, 8, 11),
    drop_path_rate=0.1,
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint=pe_spatial_vitb16_checkpoint))
