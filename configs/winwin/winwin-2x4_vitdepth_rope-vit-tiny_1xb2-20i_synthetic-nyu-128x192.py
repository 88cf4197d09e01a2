# Tiny Win-Win depth: 2 windows of 4x4 tokens per 128x192 image (32 of 96 tokens), test whole.
# Data: python tools/dataset_converters/generate_synthetic.py nyu data/synthetic_nyu_128x192 --size 128 192
_base_ = ['./vitdepth_rope-vit-tiny_fullres_1xb2-20i_synthetic-nyu-128x192.py', '../_base_/winwin/full_image_phase.py']
model = dict(type='WinWinDepthEstimator', full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),
    dict(type='WinWinPackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
