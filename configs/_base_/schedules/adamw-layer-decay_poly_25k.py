# adamw-layer-decay_poly_160k.py, 25k iterations with 1000 warm-up iterations (mmseg's
# schedule_25k intervals): the depth fine-tuning schedule.
_base_ = ['./adamw-layer-decay_poly_160k.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1000),
    dict(type='PolyLR', power=1.0, begin=1000, end=25000, eta_min=0.0, by_epoch=False),
]
train_cfg = dict(max_iters=25000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=2000))
