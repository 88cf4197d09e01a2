# Win-Win twin of fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py: 2 windows of
# 4x4 tokens (32 of 96) per pair, the same windows in both frames (the paper's policy).
_base_ = ['./fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, margin=0))  # frame-2 margin, tokens
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
