# eva02-vitb14 backbone for the Win-Win / baseline configs (used as
# backbone={{_base_.eva02_vitb14_backbone}}; unique names, so it can be a second base).
# Weights: BAAI's EVA-02 release (MIT licence; e.g. eva02_B_pt_in21k_p14.pt from
# https://github.com/baaivision/EVA) or timm's eva02_base_patch14_224 weights, read as they are
# or converted once by tools/model_converters/rope_family2mmwinwin.py. EVA-02 rescales token
# positions from the full image grid to its 16x16 pre-training grid, so the window tokens keep
# full-image coordinates.
eva02_vitb14_checkpoint = 'checkpoints/eva02_B_pt_in21k_p14.pt'  # your download
eva02_vitb14_backbone = dict(
    _delete_=True,
    type='RoPEViT',
    arch='eva02-vitb14',  # patch 14, SwiGLU + sub-LN, abs. pos. embed + EVA-02 RoPE
    out_indices=(2, 5, 8, 11),
    drop_path_rate=0.1,
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint=eva02_vitb14_checkpoint))
