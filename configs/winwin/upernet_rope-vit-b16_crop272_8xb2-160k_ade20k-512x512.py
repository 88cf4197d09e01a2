# Low-resolution-crop baseline for ADE20K: one 272x272 crop (289 tokens, the Win-Win budget of
# 2x12x12 = 288), test whole.
_base_ = ['../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py']
crop_size = (272, 272)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
