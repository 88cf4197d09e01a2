# Tiny Win-Win depth: 2 windows of 4x4 tokens per 128x192 image (32 of 96 tokens), test whole.
# Data: python tools/dataset_converters/generate_synthetic.py nyu data/synthetic_nyu_128x192 --size 128 192
_base_ = ['./vitdepth_rope-vit-tiny_fullres_1xb2-20i_synthetic-nyu-128x192.py']
# The recipe (docs/winwin.md, 'The recipe: a full-image phase'): windows for the first 5/6 of
# training, whole images for the last 1/6 (full-resolution cost and memory there); the paper's
# windows-only training is full_image_phase=None.
model = dict(type='WinWinDepthEstimator', full_image_phase=dict(begin_fraction=5 / 6))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=4),
    dict(type='WinWinPackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
