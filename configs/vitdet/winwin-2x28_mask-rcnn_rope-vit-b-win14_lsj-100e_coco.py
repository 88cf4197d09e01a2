# Win-Win twin of mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py: Mask R-CNN with the
# ViTDet-style RoPE ViT-B/16 trained on 2 windows of 28x28 tokens per 1024x1024 LSJ image,
# tested on the whole image in one pass (the host's predict).
#
# Window size, in tokens: a 1024x1024 image is a 64x64 token grid (4096 tokens).
# 28 = 2 x the 14-token attention partition, so the windowed blocks tile each window
# exactly (no padded partitions), and 2 windows of 28x28 = 1568 tokens (38 % of the image:
# global blocks attend over 15 % of the full-image pairs) stay well under half the image,
# near the paper's best segmentation budget (2 windows, ~27 % of the tokens on BDD100K);
# the next multiple, 42, would keep 86 % of the tokens. Images that large-scale jitter
# leaves smaller than 2 windows of 28 get the largest windows that fit (shrink_to_fit).
_base_ = ['./mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py']
image_size = (1024, 1024)
model = dict(
    type='WinWinTwoStageDetector',
    # The recipe (docs/detection.md, "The recipe in the detection configs"): windows for the
    # first 17 of the 25 epochs, whole images (the host's own loss) for the rest, with the
    # phase's own learning rate (param_scheduler below). Whole images are packed for it
    # (pixels='image'; a canvas of the windows' pixels, pixels='windows', is for windows-only
    # training: full_image_phase=None). No batch padding to 1024 and no mask padding: every
    # window is cropped to its own size for the heads, and the phase pads the masks to the
    # batch input itself.
    # The whole-image steps sample as the full-resolution twin (its train_cfg: 256 anchors,
    # 2000 / 1000 proposals, 512 RoIs per image), the window steps per window (below).
    full_image_phase=dict(begin_fraction=17 / 25, train_cfg={{_base_.model.train_cfg}}),
    data_preprocessor=dict(pad_mask=False, batch_augments=None),
    # instances cut by a window border: kept when >= 16 px and >= 1/4 of min(own area,
    # window area) are visible, else ignore regions (mmwinwin.models.winwin.window_targets)
    border_rule=dict(min_visible_area=16, min_visible_fraction=0.25, dropped='ignore',
                     recompute_bbox=True),  # as the pipeline's RandomCrop
    # Each window is a small image for the RPN and the RoI head. Its samples follow the
    # window's share of the image, so the heads' work per image shrinks with the tokens as
    # the backbone's does: full resolution draws 256 anchors, keeps 2000 proposals per level
    # before NMS and 1000 after, and samples 512 RoIs per 1024x1024 image (64x64 = 4096
    # tokens); a 28x28-token window is 784 / 4096 = 19.1 % of it, so per window
    # round(256 * 0.191) = 49 anchors, round(2000 * 0.191) = 383 and round(1000 * 0.191)
    # = 191 proposals, round(512 * 0.191) = 98 RoIs (pos_fraction 0.25 as in full resolution:
    # up to 24 positives, the mask head's RoIs). The same density of samples per image area
    # as full resolution; per image (2 windows) that is 98 anchors and 196 RoIs instead of
    # 256 and 512: less head supervision per step, in proportion to the image area trained
    # on. (The counts are fixed in the config: windows that shrink_to_fit makes smaller on
    # small LSJ images keep them.) (Keeping 512 RoIs per image, 256 per window, kept the box head at its
    # full-resolution cost, a box head's cost being per RoI: with its RoIAlign 22 % of a
    # Win-Win step, the largest part after the backbone; docs/detection.md, "Cost of a
    # Win-Win detection step".)
    # ignore_iof_thr makes the assigners use the ignore regions (crowd, and instances the
    # border rule dropped) instead of calling them background.
    train_cfg=dict(
        rpn=dict(assigner=dict(ignore_iof_thr=0.5), sampler=dict(num=49)),
        rpn_proposal=dict(nms_pre=383, max_per_img=191),
        rcnn=dict(assigner=dict(ignore_iof_thr=0.5), sampler=dict(num=98))))

train_pipeline = [  # the twin's (mmdet's LSJ) pipeline + the window transform and packer
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='WinWinWindows', num_windows=2, window_size=28, patch_size=16, shrink_to_fit=True,
         grid_divisor=32),  # RoPE grid = the test's, padded to pad_size_divisor=32
    dict(type='WinWinPackDetInputs'),  # whole images (pixels='image'): the phase trains on them
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

# The twin's schedule is epoch-based (25 epochs of the 4x repeated dataset): the phase begins
# at epoch 17 (17 / 25 of max_iters, the last third rounded to whole epochs, so that its first
# iteration is an epoch's). The host's step decays (epochs 22, 24) lie past it, so the windows
# part keeps the warm-up and then the base learning rate; one cosine restart anneals it from
# there to 0 over the phase's 8 epochs (converted to iterations, as phase_restart_schedule
# does for iteration-based schedules).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.067, by_epoch=False, begin=0, end=500),
    dict(type='CosineRestartLR', periods=[8], restart_weights=[1.0], eta_min=0.0,
         by_epoch=True, begin=17, end=25, convert_to_iter_based=True)]
