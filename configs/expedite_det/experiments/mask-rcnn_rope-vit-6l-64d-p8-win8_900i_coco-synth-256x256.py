# Plain ViTDet-style RoPE ViT (6 blocks, 64-d, patch 8, 8x8-token windows, global attention
# in blocks 3 and 6) + simple pyramid + light Mask R-CNN heads, trained from scratch on
# generated 256x256 COCO images (32x32 = 1024 tokens; red boxes and green discs), for the
# token-reduction comparison on the same weights (Expedite, ToMe-style merging, pooling):
# python -m mmwinwin.experiments.token_reduction (it generates the data, sets data_root and may
# change the schedule). The backbone is ExpeditedRoPEViTDet with expedite=None (the plain
# model). Patch 8: the stride-8 map gives pyramid strides 4, 8, 16 (+ pooled 32, 64). 900
# iterations: after 300 no detection scored above 0.31 (box AP 6.6).
_base_ = ['../../vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py']
data_root = 'data/coco_synth_256x256/'
image_size = (256, 256)
max_iters = 900
model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(type='ExpeditedRoPEViTDet', expedite=None,
                  arch=dict(embed_dims=64, num_layers=6, num_heads=2), patch_size=8,
                  partition_size=8, global_indices=[2, 5]),
    neck=dict(scales=(2.0, 1.0, 0.5), num_outs=5),
    roi_head=dict(bbox_head=dict(type='Shared2FCBBoxHead'), mask_head=dict(num_convs=2)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=32))))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=max_iters - 30, eta_min=1e-5, by_epoch=False,
         begin=30, end=max_iters),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=max_iters // 3, max_keep_ckpts=1))
