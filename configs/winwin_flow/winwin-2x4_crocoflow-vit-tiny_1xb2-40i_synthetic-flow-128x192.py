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
