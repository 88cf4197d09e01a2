# PE-Spatial ViT-B/16 (Perception Encoder, Meta 2025; pre-trained at 512) + UPerNet on ADE20K
# 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Low-resolution-crop baseline: one 272x272 crop (17x17 = 289 tokens, about the Win-Win budget of
# 2x12x12 = 288), test whole.
# Weights: Meta's release, Apache-2.0 licence (https://github.com/facebookresearch/perception_models;
# HF hub facebook/PE-Spatial-B16-512, file PE-Spatial-B16-512.pt), or timm's
# vit_pe_spatial_base_patch16_512.fb weights; read as they are or converted once by
# tools/model_converters/rope_family2mmwinwin.py. PE normalises images with mean = std = 0.5.
_base_ = ['./upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py']
pe_checkpoint = 'checkpoints/PE-Spatial-B16-512.pt'  # your download
model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        _delete_=True,
        type='RoPEViT',
        arch='pe-spatial-vitb16',  # pre-norm, cls token, abs. pos. embed + PE RoPE
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pe_checkpoint)))
