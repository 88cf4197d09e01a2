# Low-resolution-crop baseline: train on one random 496x496 crop per image
# (961 tokens, about the Win-Win budget of 2x22x22 = 968), test on whole 720x1280 images.
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-80k_bdd100k-720x1280.py']
crop_size = (496, 496)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomResize', scale=(1280, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
