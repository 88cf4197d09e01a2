# Win-Win with the optional pairing policy: frame-2 windows enlarged by 2 tokens (32 px) on
# every side, so motions of up to 2 patches that leave a 4x4-token window keep their match.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, margin=2))  # frame-2 margin, tokens
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
