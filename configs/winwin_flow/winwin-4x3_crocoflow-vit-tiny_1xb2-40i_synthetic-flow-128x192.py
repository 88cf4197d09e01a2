# Tiny Win-Win on generated pairs: 4 windows of 3x3 tokens, frame-2 windows enlarged by a
# margin of 1 token (the optional pairing policy), full-resolution evaluation.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py']
# The recipe (docs/winwin.md, 'The recipe: a full-image phase'): windows for the first 5/6 of
# training, whole frame pairs for the last 1/6 (full-resolution cost and memory there); the paper's
# windows-only training is full_image_phase=None.
model = dict(windows=dict(_delete_=True, margin=1),  # frame-2 margin, tokens
             full_image_phase=dict(begin_fraction=5 / 6))
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=4, window_size=3),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
