# Generated flow pairs in the Sintel layout (smooth background + moving object).
# Data: python tools/dataset_converters/generate_synthetic.py sintel-flow \
#     data/synthetic_flow --size 128 192 --num-train 256 --num-val 8 --max-flow 24
data_root = 'data/synthetic_flow'
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackFlowInputs')]
test_pipeline = [dict(type='LoadFlowPair'), dict(type='PackFlowInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SintelFlowDataset', data_root=data_root + '/train', split='training',
                 passes='clean', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SintelFlowDataset', data_root=data_root + '/val', split='training',
                 passes='clean', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowMetric', average='pixel')
test_evaluator = val_evaluator
