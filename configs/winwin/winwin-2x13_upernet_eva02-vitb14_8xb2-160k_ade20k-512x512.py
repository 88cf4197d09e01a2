# EVA-02 ViT-B/14 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 13x13 tokens (338 of the 36x36 = 1296 tokens) of each 512x512 crop, test
# whole. Baselines beside it: upernet_eva02-vitb14_fullres_* (full resolution) and
# upernet_eva02-vitb14_crop252_* (one low-resolution crop of 18x18 = 324 tokens).
# Weights: BAAI's EVA-02 release (MIT licence; e.g. eva02_B_pt_in21k_p14.pt from
# https://github.com/baaivision/EVA) or timm's eva02_base_patch14_224 weights, read as they are
# or converted once by tools/model_converters/rope_family2mmwinwin.py. EVA-02 rescales token
# positions from the full image grid to its 16x16 pre-training grid, so the window tokens keep
# full-image coordinates.
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py']
eva02_checkpoint = 'checkpoints/eva02_B_pt_in21k_p14.pt'  # your download
model = dict(
    backbone=dict(
        _delete_=True,
        type='RoPEViT',
        arch='eva02-vitb14',  # patch 14, SwiGLU + sub-LN, abs. pos. embed + EVA-02 RoPE
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=eva02_checkpoint)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='WinWinWindows', num_windows=2, window_size=13, shrink_to_fit=True),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
