# Tiny Win-Win: 2 windows of 4x4 tokens of each 128x256 image (32 of 128 tokens), test whole.
# Data: python tools/dataset_converters/generate_synthetic.py ade20k data/synthetic_ade20k_128x256 --size 128 256
_base_ = ['./upernet_rope-vit-tiny_fullres_1xb2-20i_synthetic-ade20k-128x256.py', '../_base_/winwin/full_image_phase.py']
model = dict(type='WinWinEncoderDecoder', full_image_phase={{_base_.full_image_phase}})  # the recipe
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16),
    dict(type='WinWinPackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
