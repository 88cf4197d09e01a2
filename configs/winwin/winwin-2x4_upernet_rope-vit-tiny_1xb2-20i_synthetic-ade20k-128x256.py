# Tiny Win-Win: 2 windows of 4x4 tokens of each 128x256 image (32 of 128 tokens), test whole.
# Data: python tools/dataset_converters/generate_synthetic.py ade20k data/synthetic_ade20k_128x256 --size 128 256
_base_ = ['./upernet_rope-vit-tiny_fullres_1xb2-20i_synthetic-ade20k-128x256.py', '../_base_/winwin/full_image_phase_last_third.py']
model = dict(type='WinWinEncoderDecoder', full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the recipe's learning rate: the host's schedule ends where the whole-image phase begins
# (iteration 13 = 2/3 of 20); the phase restarts it at the optimizer's lr
# and anneals it to 0 (mmwinwin.engine.phase_restart_schedule, docs/winwin.md)
param_scheduler = [
    dict(type='PolyLR', power=1.0, begin=0, end=13, eta_min=0.0, by_epoch=False),
    dict(type='CosineRestartLR', periods=[7], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=13, end=20)]
