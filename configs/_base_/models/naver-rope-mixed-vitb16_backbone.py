# naver-rope-mixed-vitb16 backbone for the Win-Win / baseline configs (used as
# backbone={{_base_.naver_rope_mixed_vitb16_backbone}}; unique names, so it can be a second base).
# Weights: naver's release, Apache-2.0 licence (https://github.com/naver-ai/rope-vit; HF hub
# naver-ai/rope_mixed_deit_base_patch16_LS, or its Google-drive rope_mixed_deit_base_patch16_LS
# .pth), or timm's vit_base_patch16_rope_mixed_224.naver_in1k weights; read as they are or
# converted once by tools/model_converters/rope_family2mmwinwin.py.
naver_rope_mixed_vitb16_checkpoint = 'checkpoints/rope_mixed_deit_base_patch16_LS.pth'  # your download
naver_rope_mixed_vitb16_backbone = dict(
    _delete_=True,
    type='RoPEViT',
    arch='naver-rope-mixed-vitb16',  # cls token, layer scale, RoPE-Mixed
    out_indices=(2, 5, 8, 11),
    drop_path_rate=0.1,
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint=naver_rope_mixed_vitb16_checkpoint))
