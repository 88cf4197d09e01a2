# Tiny Win-Win on generated pairs: 2 windows of 4x4 tokens (32 of 96 tokens) per pair,
# full-resolution evaluation.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py', '../_base_/winwin/full_image_phase.py']
model = dict(windows=dict(_delete_=True, margin=0),  # frame-2 margin, tokens
             full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the recipe's learning rate: the host's schedule ends where the whole-image phase begins
# (iteration 33 = 5/6 of 40); the phase restarts it at the optimizer's lr
# and anneals it to 0 (mmwinwin.engine.phase_restart_schedule, docs/winwin.md)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=33, eta_min=1e-05),
    dict(type='CosineRestartLR', periods=[7], restart_weights=[1.0], eta_min=0.0, by_epoch=False,
         begin=33, end=40)]
