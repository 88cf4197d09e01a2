# The ViT fine-tuning recipe for dense prediction, once for every ViT-B config: AdamW with
# layer-wise learning-rate decay (0.65 per layer over 12 layers), linear warm-up for 1500
# iterations, then poly decay to 0; 160k iterations (mmseg's schedule_160k loop and hooks).
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, decay_rate=0.65))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=160000, eta_min=0.0, by_epoch=False),
]
