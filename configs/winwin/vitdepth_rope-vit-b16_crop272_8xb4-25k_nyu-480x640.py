# Low-resolution-crop baseline for NYU depth: one 272x272 crop (289 tokens, the Win-Win budget),
# test whole.
_base_ = ['./vitdepth_rope-vit-b16_fullres_8xb4-25k_nyu-480x640.py']
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=(272, 272)),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
