# Small UPerNet RoPE ViT trained here from scratch on synthetic ADE20K-layout data, to
# measure Expedite's accuracy without fine-tuning (docs/expedite.md). 128x128, patch 8 ->
# 16x16 tokens, 6 layers, levels from layers 2, 4, 5, 6.
_base_ = '../../rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'
data_root = 'data/synthetic_ade20k_expedite'
model = dict(
    backbone=dict(patch_size=8,
                  arch=dict(_delete_=True, embed_dims=64, num_layers=6, num_heads=2, mlp_ratio=4.0),
                  out_indices=(1, 3, 4, 5)),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', power=1.0, begin=0, end=120, eta_min=1e-5, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=120, val_interval=120)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=120, max_keep_ckpts=1))
