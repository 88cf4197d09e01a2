# RoPE-ViT (naver-ai, ECCV 2024) RoPE-Mixed ViT-B/16 + UPerNet on ADE20K 512x512, 8 GPUs x 2
# images, 160k iterations, AdamW with layer-wise LR decay 0.65
# (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Full-resolution baseline (512x512 crops, all tokens) of
# winwin-2x12_upernet_naver-rope-mixed-vitb16_8xb2-160k_ade20k-512x512.py.
# Weights: naver's release, Apache-2.0 licence (https://github.com/naver-ai/rope-vit; HF hub
# naver-ai/rope_mixed_deit_base_patch16_LS, or its Google-drive rope_mixed_deit_base_patch16_LS
# .pth), or timm's vit_base_patch16_rope_mixed_224.naver_in1k weights; read as they are or
# converted once by tools/model_converters/rope_family2mmwinwin.py.
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-160k_ade20k-512x512.py']
naver_checkpoint = 'checkpoints/rope_mixed_deit_base_patch16_LS.pth'  # your download
model = dict(
    backbone=dict(
        _delete_=True,
        type='RoPEViT',
        arch='naver-rope-mixed-vitb16',  # cls token, layer scale, RoPE-Mixed
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=naver_checkpoint)))
