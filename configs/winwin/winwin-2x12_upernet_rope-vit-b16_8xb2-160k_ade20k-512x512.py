# Win-Win on ADE20K: 2 windows of 12x12 tokens out of each 512x512 crop (288 of 1024 tokens,
# 28 %), test whole (short side 512) in one pass.
# Baselines: ../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py (full resolution) and
# upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py (one low-resolution crop, same budget).
_base_ = ['../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/winwin/full_image_phase.py']
model = dict(type='WinWinEncoderDecoder', full_image_phase={{_base_.full_image_phase}})  # the recipe
crop_size = (512, 512)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='WinWinWindows', num_windows=2, window_size=12, patch_size=16, shrink_to_fit=True),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
