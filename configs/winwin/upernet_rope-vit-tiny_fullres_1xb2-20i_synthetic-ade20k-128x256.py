# Tiny full-resolution baseline on generated high-resolution ADE20K-layout data (CPU, seconds).
# Data: python tools/dataset_converters/generate_synthetic.py ade20k data/synthetic_ade20k_128x256 --size 128 256
_base_ = ['../rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py']
crop_size = (128, 256)
data_root = 'data/synthetic_ade20k_128x256'
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(mode='whole'))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
