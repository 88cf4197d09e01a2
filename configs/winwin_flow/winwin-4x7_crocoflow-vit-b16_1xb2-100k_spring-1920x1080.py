# Win-Win: train on 4 random windows of 7x7 tokens per pair (same windows in both
# frames); test in one pass on the whole 1920x1080 frames.
_base_ = ['./fullres_crocoflow-vit-b16_1xb2-100k_spring-1920x1080.py']
# The recipe (docs/winwin.md, 'The recipe: a full-image phase'): windows for the first 5/6 of
# training, whole frame pairs for the last 1/6 (full-resolution cost and memory there); the paper's
# windows-only training is full_image_phase=None.
model = dict(windows=dict(_delete_=True, margin=0),  # frame-2 margin, tokens
             full_image_phase=dict(begin_fraction=5 / 6))
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='WinWinWindows', num_windows=4, window_size=7),  # after the flips
    dict(type='PackFlowInputs')]  # carries the windows to the model
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
