# MPI-Sintel training set (clean + final), full 1024x436 frames: Win-Win samples its
# windows in the whole frame, evaluation is one pass on the whole frame.
data_root = 'data/Sintel'
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='FlowRandomFlip', prob=0.1, direction='vertical'),
    dict(type='PackFlowInputs')]
test_pipeline = [dict(type='LoadFlowPair'), dict(type='PackFlowInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SintelFlowDataset', data_root=data_root, split='training',
                 passes=['clean', 'final'], pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SintelFlowDataset', data_root=data_root, split='training',
                 passes='clean', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowMetric', average='pixel')
test_evaluator = val_evaluator
