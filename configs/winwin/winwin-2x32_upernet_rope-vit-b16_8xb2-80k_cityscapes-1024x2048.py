# Win-Win: train on 2 random windows of 32x32 tokens per image (2048 of 8192 tokens,
# 25 %), test on whole 1024x2048 images in one pass. Cityscapes 1024x2048.
# Baselines beside it: upernet_rope-vit-b16_fullres_8xb2-80k_cityscapes-1024x2048.py (full resolution)
# and upernet_rope-vit-b16_crop720_8xb2-80k_cityscapes-1024x2048.py (one low-resolution crop, same budget).
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-80k_cityscapes-1024x2048.py', '../_base_/winwin/full_image_phase_last_third.py']
model = dict(type='WinWinEncoderDecoder', full_image_phase={{_base_.full_image_phase}})  # the recipe
crop_size = (1024, 2048)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    # after the geometric augmentations; shrink_to_fit for down-scaled images
    dict(type='WinWinWindows', num_windows=2, window_size=32, patch_size=16, shrink_to_fit=True),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the recipe's learning rate: the host's schedule ends where the whole-image phase begins
# (iteration 53333 = 2/3 of 80000); the phase restarts it at the optimizer's lr
# and anneals it to 0 (mmwinwin.engine.phase_restart_schedule, docs/winwin.md)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-06, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=53333, eta_min=0.0, by_epoch=False),
    dict(type='CosineRestartLR', periods=[26667], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=53333, end=80000)]
