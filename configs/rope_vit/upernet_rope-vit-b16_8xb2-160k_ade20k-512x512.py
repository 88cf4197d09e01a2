# RoPE ViT-B/16 + UPerNet on ADE20K, 512x512 crops, 8 GPUs x 2 images, 160k iterations.
# Pretrained ViT weights (timm / DeiT / MAE / mmseg layouts) load through
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint='PATH').
_base_ = [
    '../_base_/models/upernet_rope-vit-b16.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)

# AdamW with layer-wise learning-rate decay, the standard ViT fine-tuning recipe
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
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
