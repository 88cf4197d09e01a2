# Win-Win twin of the tiny Mask2Former instance segmentation on generated COCO data (CPU
# smoke run): python tools/dataset_converters/generate_synthetic.py coco data/coco_synth
# 128x128 images with patch 16 are an 8x8 token grid; 2 windows of 4x4 tokens (64x64 px)
# keep half of it, as large as the backbone's 4-token attention partitions. Windows are
# sampled inside the real image (jitter can make it smaller than 128x128), shrunk where
# two do not fit. Mask2Former has no ignore regions: instances the border rule drops are
# simply not targets.
_base_ = ['./mask2former_rope-vit-tiny-win4_2i_coco-synth-128x128.py']
model = dict(
    type='WinWinMask2Former',
    # Only the windows' pixels are packed (a canvas, as the full-size twins): no batch or
    # mask padding (each window is cropped to its own size for the heads).
    data_preprocessor=dict(pad_mask=False, batch_augments=None),
    border_rule=dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore',
                     recompute_bbox=True),  # as the pipeline's RandomCrop
    train_cfg=dict(num_points=256))  # point-sampled mask loss: a 64x64 window has 4096 px

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.5, 2.0), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=(128, 128), crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16, shrink_to_fit=True,
         grid_divisor=32),  # RoPE grid = the test's, padded to pad_size_divisor=32
    dict(type='WinWinPackDetInputs', pixels='windows'),  # only the windows' pixels
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
