# Low-resolution-crop baseline: train on one random 720x720 crop per image
# (2025 tokens, about the Win-Win budget of 2x32x32 = 2048), test on whole 1024x2048 images.
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-80k_cityscapes-1024x2048.py']
crop_size = (720, 720)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
