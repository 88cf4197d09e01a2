# Tiny RoPE ViT + UPerNet on synthetic ADE20K-layout data: trains on CPU in seconds.
# Data: python tools/dataset_converters/generate_synthetic.py ade20k data/synthetic_ade20k --size 128 128
_base_ = [
    '../_base_/models/upernet_rope-vit-b16.py',
    '../_base_/datasets/synthetic_ade20k.py',
    'mmseg::_base_/default_runtime.py',
]
crop_size = (128, 128)
embed_dims = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4, num_heads=2, mlp_ratio=2.0),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0),
    neck=dict(in_channels=[embed_dims] * 4, out_channels=embed_dims),
    decode_head=dict(
        in_channels=[embed_dims] * 4, channels=32, num_classes=7, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dims, channels=16, num_classes=7, norm_cfg=norm_cfg))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=4, decay_rate=0.9))
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
