# AdamW + warm-up + cosine over 100k iterations (CroCo-Flow fine-tuning style).
optim_wrapper = dict(type='OptimWrapper', clip_grad=dict(max_norm=1.0),
                     optimizer=dict(type='AdamW', lr=3e-5, betas=(0.9, 0.95), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2000, end=100000, eta_min=1e-7)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
