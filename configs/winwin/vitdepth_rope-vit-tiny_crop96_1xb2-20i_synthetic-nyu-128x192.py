# Tiny low-resolution-crop depth baseline: one 96x96 crop (36 tokens, ~ the 2x4x4 budget), test whole.
_base_ = ['./vitdepth_rope-vit-tiny_fullres_1xb2-20i_synthetic-nyu-128x192.py']
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=(96, 96)),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
