# Tiny full-resolution depth baseline on generated NYU-layout data (CPU, seconds).
# Data: python tools/dataset_converters/generate_synthetic.py nyu data/synthetic_nyu_128x192 --size 128 192
_base_ = [
    '../_base_/models/vitdepth_rope-vit-b16.py',
    'mmseg::_base_/datasets/nyu.py',
    'mmseg::_base_/default_runtime.py',
]
data_root = 'data/synthetic_nyu_128x192'
embed_dims = 64
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4, num_heads=2,
                            mlp_ratio=2.0), out_indices=(0, 1, 2, 3), drop_path_rate=0.0),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=32))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0,
                     crop_type=None)
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [dict(type='PolyLR', power=1.0, begin=0, end=20, eta_min=0.0, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20, val_interval=20)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10, max_keep_ckpts=2),
    visualization=dict(type='SegVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
