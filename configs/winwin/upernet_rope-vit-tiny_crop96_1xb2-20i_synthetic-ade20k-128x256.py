# Tiny low-resolution-crop baseline: one 96x96 crop (36 tokens, ~ the 2x4x4 budget), test whole.
_base_ = ['./upernet_rope-vit-tiny_fullres_1xb2-20i_synthetic-ade20k-128x256.py']
crop_size = (96, 96)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
