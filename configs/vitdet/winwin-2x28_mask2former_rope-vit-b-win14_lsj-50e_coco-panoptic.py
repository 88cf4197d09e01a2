# Win-Win twin of mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py: 2 windows of
# 28x28 tokens per 1024x1024 LSJ image; panoptic segments (things and stuff, void kept
# void) cut to each window; evaluated on whole images (mmwinwin.CocoPanopticMetric).
#
# Window size, in tokens: as for winwin-2x28_mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py
# (64x64 token grid; 28 = 2 partitions of 14, 2 x 28^2 = 38 % of the tokens).
_base_ = ['./mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py',
          '../_base_/winwin/full_image_phase_last_third.py']
image_size = (1024, 1024)
backend_args = None
model = dict(
    type='WinWinMask2Former',
    # The recipe (docs/detection.md, "The recipe in the detection configs"): windows for the
    # first 2/3 of training, whole images (the host's own loss) for the rest, with the
    # phase's own learning rate (param_scheduler below). Whole images are packed for it
    # (pixels='image'; a canvas of the windows' pixels, pixels='windows', is for windows-only
    # training: full_image_phase=None). No batch padding to 1024 and no mask padding: every
    # window is cropped to its own size for the heads, and the phase pads the masks to the
    # batch input itself.
    # The whole-image steps sample as the full-resolution twin (its train_cfg) and train on
    # half of each batch (batch_fraction): for panoptic Mask2Former level with or above the
    # whole batch at about 0.8 of its cost (docs/detection.md).
    full_image_phase=dict(begin_fraction={{_base_.full_image_phase.begin_fraction}},
                          train_cfg={{_base_.model.train_cfg}}, batch_fraction=0.5),
    data_preprocessor=dict(pad_mask=False, batch_augments=None),
    border_rule=dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore',
                     recompute_bbox=True))  # as the pipeline's RandomCrop

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='mmwinwin.LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    # large scale jittering
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='WinWinWindows', num_windows=2, window_size=28, patch_size=16, shrink_to_fit=True,
         grid_divisor=32),  # RoPE grid = the test's, padded to pad_size_divisor=32
    dict(type='WinWinPackDetInputs'),  # whole images (pixels='image'): the phase trains on them
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# the host's schedule cut at the phase (its step decays lie past it: the windows part trains at
# the base learning rate), then one cosine restart from it to 0 over the phase
# (mmwinwin.engine.phase_restart_schedule of the twin's schedule at 245833 = 2/3 of 368750)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=245833, by_epoch=False, milestones=[327778, 355092],
         gamma=0.1),
    dict(type='CosineRestartLR', periods=[122917], restart_weights=[1.0], eta_min=0.0,
         by_epoch=False, begin=245833, end=368750)]
