# Win-Win depth on NYU: 2 windows of 12x12 tokens per 480x640 image (288 of 1200 tokens, 24 %),
# test whole. Baselines: vitdepth_rope-vit-b16_fullres_8xb4-25k_nyu-480x640.py and
# vitdepth_rope-vit-b16_crop272_8xb4-25k_nyu-480x640.py.
_base_ = ['./vitdepth_rope-vit-b16_fullres_8xb4-25k_nyu-480x640.py', '../_base_/winwin/full_image_phase.py']
model = dict(type='WinWinDepthEstimator', full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=12, patch_size=16),
    dict(type='WinWinPackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
