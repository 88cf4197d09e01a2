# Win-Win: train on 4 random windows of 7x7 tokens per pair (same windows in both
# frames); test in one pass on the whole 1920x1080 frames.
_base_ = ['./fullres_crocoflow-vit-b16_1xb2-100k_spring-1920x1080.py', '../_base_/winwin/full_image_phase.py']
model = dict(windows=dict(_delete_=True, margin=0),  # frame-2 margin, tokens
             full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=4, window_size=7, patch_size=16),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the recipe's learning rate: the host's schedule ends where the whole-image phase begins
# (iteration 83333 = 5/6 of 100000); the phase restarts it at the optimizer's lr
# and anneals it to 0 (mmwinwin.engine.phase_restart_schedule, docs/winwin.md)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2000, end=83333, eta_min=1e-07),
    dict(type='CosineRestartLR', periods=[16667], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=83333, end=100000)]
