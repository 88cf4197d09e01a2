# EVA-02 ViT-B/14 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Win-Win: 2 windows of 13x13 tokens (338 of the 36x36 = 1296 tokens) of each 512x512 crop, test
# whole. Baselines beside it: upernet_eva02-vitb14_fullres_* (full resolution) and
# upernet_eva02-vitb14_crop252_* (one low-resolution crop of 18x18 = 324 tokens).
# Weights and licence: ../_base_/models/eva02-vitb14_backbone.py.
_base_ = ['./winwin-2x12_upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/models/eva02-vitb14_backbone.py']
model = dict(
    backbone={{_base_.eva02_vitb14_backbone}})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='WinWinWindows', num_windows=2, window_size=13, patch_size=14, shrink_to_fit=True),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
