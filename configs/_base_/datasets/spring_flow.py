# Spring (full HD 1920x1080): forward flow of the left camera. Training subsamples the 2x
# super-resolved GT to the 1920x1080 grid; evaluation keeps all of it and follows Spring's
# conventions (each pixel against its four GT sub-pixels, the smallest error counts).
# Spring ranks by the 1px outlier rate (`flow/1px`); EPE, Fl and WAUC beside it.
data_root = 'data/spring'
train_pipeline = [
    dict(type='LoadFlowPair'),
    dict(type='FlowRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackFlowInputs')]
test_pipeline = [dict(type='LoadFlowPair', keep_subpixel_gt=True), dict(type='PackFlowInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SpringFlowDataset', data_root=data_root, split='train', camera='left',
                 direction='FW', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SpringFlowDataset', data_root=data_root, split='train', camera='left',
                 direction='FW', pipeline=test_pipeline, test_mode=True, indices=200))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowMetric', convention='spring')
test_evaluator = val_evaluator
