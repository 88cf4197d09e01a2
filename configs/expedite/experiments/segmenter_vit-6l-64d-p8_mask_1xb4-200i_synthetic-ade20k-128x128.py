# Small mmseg Segmenter (mmseg's own VisionTransformer + mask-transformer head) trained here
# from scratch on synthetic ADE20K-layout data, to measure Expedite's accuracy without
# fine-tuning (docs/expedite.md). 128x128 images, patch 8 -> 16x16 tokens, 6 layers.
# Data: python tools/dataset_converters/generate_synthetic.py ade20k \
#           data/synthetic_ade20k_expedite --size 128 128 --num-train 300 --num-val 40
_base_ = [
    'mmseg::_base_/models/segmenter_vit-b16_mask.py',
    '../../_base_/datasets/synthetic_ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../../_base_/mmwinwin_runtime.py',
]
crop_size = (128, 128)
data_root = 'data/synthetic_ade20k_expedite'
model = dict(
    pretrained=None,
    data_preprocessor=dict(type='CheckedSegDataPreProcessor', size=crop_size),
    backbone=dict(img_size=crop_size, patch_size=8, embed_dims=64, num_layers=6, num_heads=2,
                  drop_path_rate=0.0),
    decode_head=dict(in_channels=64, channels=64, embed_dims=64, num_heads=2, num_layers=1,
                     num_classes=7),
    test_cfg=dict(_delete_=True, mode='whole'))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', power=1.0, begin=0, end=200, eta_min=1e-5, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
