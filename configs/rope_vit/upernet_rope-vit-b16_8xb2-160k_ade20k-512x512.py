# RoPE ViT-B/16 + UPerNet on ADE20K, 512x512 crops, 8 GPUs x 2 images, 160k iterations.
# Pretrained ViT weights (timm / DeiT / MAE / mmseg layouts) load through
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint='PATH').
_base_ = [
    '../_base_/models/upernet_rope-vit-b16.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw-layer-decay_poly_160k.py',
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
