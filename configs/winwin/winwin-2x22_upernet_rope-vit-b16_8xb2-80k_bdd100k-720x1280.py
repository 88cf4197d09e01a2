# Win-Win: train on 2 random windows of 22x22 tokens per image (968 of 3600 tokens,
# 27 %), test on whole 720x1280 images in one pass. BDD100K 720x1280 (the paper's setting).
# Baselines beside it: upernet_rope-vit-b16_fullres_8xb2-80k_bdd100k-720x1280.py (full resolution)
# and upernet_rope-vit-b16_crop496_8xb2-80k_bdd100k-720x1280.py (one low-resolution crop, same budget).
_base_ = ['./upernet_rope-vit-b16_fullres_8xb2-80k_bdd100k-720x1280.py', '../_base_/winwin/full_image_phase_last_third.py']
model = dict(type='WinWinEncoderDecoder', full_image_phase={{_base_.full_image_phase}})  # the recipe
crop_size = (720, 1280)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomResize', scale=(1280, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    # after the geometric augmentations; shrink_to_fit for down-scaled images
    dict(type='WinWinWindows', num_windows=2, window_size=22, patch_size=16, shrink_to_fit=True),
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
