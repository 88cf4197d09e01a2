# EVA-02 ViT-B/14 + UPerNet on ADE20K 512x512, 8 GPUs x 2 images, 160k iterations, AdamW with
# layer-wise LR decay 0.65 (../_base_/schedules/adamw-layer-decay_poly_160k.py).
# Low-resolution-crop baseline: one 252x252 crop (18x18 = 324 tokens, about the Win-Win budget of
# 2x13x13 = 338), test whole.
# Weights and licence: ../_base_/models/eva02-vitb14_backbone.py.
_base_ = ['./upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py', '../_base_/models/eva02-vitb14_backbone.py']
model = dict(
    backbone={{_base_.eva02_vitb14_backbone}},
    data_preprocessor=dict(size=(252, 252)))
crop_size = (252, 252)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
