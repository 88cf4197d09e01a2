# Win-Win twin of the tiny Mask2Former panoptic segmentation on generated COCO data (CPU
# smoke run): python tools/dataset_converters/generate_synthetic.py coco data/coco_synth
# 128x128 images with patch 16 are an 8x8 token grid; 2 windows of 4x4 tokens (64x64 px)
# keep half of it, as large as the backbone's 4-token attention partitions. Windows are
# sampled inside the real image (jitter can make it smaller than 128x128), shrunk where
# two do not fit. Panoptic segments (gt_sem_seg: things and stuff, 255 = void) are cut to
# each window pixel for pixel; evaluation runs whole images (CocoPanopticMetric).
_base_ = ['./mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py',
          '../_base_/winwin/full_image_phase_last_third.py']
model = dict(
    type='WinWinMask2Former',
    # The recipe, as the full-size twins: windows for the first 2/3 of max_iters, whole images
    # (packed whole, pixels='image') for the last 1/3 with the phase's own learning rate. No
    # batch or mask padding (each window is cropped to its own size for the heads; the phase
    # pads the masks to the batch input itself).
    # The whole-image steps sample as the full-resolution twin (its train_cfg) and train on
    # half of each batch (batch_fraction): for panoptic Mask2Former level with or above the
    # whole batch at about 0.8 of its cost (docs/detection.md).
    full_image_phase=dict(begin_fraction={{_base_.full_image_phase.begin_fraction}},
                          train_cfg={{_base_.model.train_cfg}}, batch_fraction=0.5),
    data_preprocessor=dict(pad_mask=False, batch_augments=None),
    border_rule=dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore',
                     recompute_bbox=True),  # as the pipeline's RandomCrop
    train_cfg=dict(num_points=256))  # point-sampled mask loss: a 64x64 window has 4096 px

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True),
    dict(type='mmwinwin.LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.5, 2.0), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=(128, 128), crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='WinWinWindows', num_windows=2, window_size=4, patch_size=16, shrink_to_fit=True,
         grid_divisor=32),  # RoPE grid = the test's, padded to pad_size_divisor=32
    dict(type='WinWinPackDetInputs'),  # whole images (pixels='image'): the phase trains on them
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# the host's schedule cut at the phase, then one cosine restart over it
# (mmwinwin.engine.phase_restart_schedule at iteration 1 of 2)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1),
    dict(type='CosineRestartLR', periods=[1], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=1, end=2)]
