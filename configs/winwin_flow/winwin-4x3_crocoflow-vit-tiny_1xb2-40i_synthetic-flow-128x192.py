# Tiny Win-Win on generated pairs: 4 windows of 3x3 tokens, frame-2 windows enlarged by a
# margin of 1 token (the optional pairing policy), full-resolution evaluation.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py', '../_base_/winwin/full_image_phase.py']
model = dict(windows=dict(_delete_=True, margin=1),  # frame-2 margin, tokens
             full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=4, window_size=3, patch_size=16),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
