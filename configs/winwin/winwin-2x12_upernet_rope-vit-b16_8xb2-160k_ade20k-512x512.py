# Win-Win on ADE20K: 2 windows of 12x12 tokens out of each 512x512 crop (288 of 1024 tokens,
# 28 %), test whole (short side 512) in one pass.
# Baselines: ../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py (full resolution) and
# upernet_rope-vit-b16_crop272_8xb2-160k_ade20k-512x512.py (one low-resolution crop, same budget).
_base_ = ['../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/winwin/full_image_phase_last_third.py']
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
# the recipe's learning rate: the host's schedule ends where the whole-image phase begins
# (iteration 106667 = 2/3 of 160000); the phase restarts it at the optimizer's lr
# and anneals it to 0 (mmwinwin.engine.phase_restart_schedule, docs/winwin.md)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-06, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=106667, eta_min=0.0, by_epoch=False),
    dict(type='CosineRestartLR', periods=[53333], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=106667, end=160000)]
