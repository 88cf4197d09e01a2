# The Win-Win reproduction's base (python -m mmwinwin.experiments.winwin_reproduction): a tiny
# RoPE ViT (64-d, 4 blocks, patch 16) + FCN head trained at full resolution for 600 iterations,
# batch 4, on generated 192x384 ADE20K-layout images whose object classes depend on a scene
# beacon anywhere in the image (2 scenes: background + 2 objects per scene), tested on whole
# images. mmwinwin.experiments.reproduction.build_cfg loads this file and applies a variant
# (Win-Win windows, low-resolution crop, absolute positions, context tokens, whole-image phase)
# and the command's flags. The experiment generates its data; by hand:
#   python -c "from mmwinwin.datasets.synthetic import generate_ade20k as g; \
#       g('data/synthetic_cue_ade20k_192x384', 64, 12, (192, 384), num_scenes=2)"
_base_ = ['../../_base_/mmwinwin_runtime.py']  # custom_imports, hooks (RNGStateHook: validation
# leaves the training RNG alone, so runs validated on different schedules train alike)
default_scope = 'mmseg'

img_size = (192, 384)
embed_dims = 64
num_layers = 4
iters = 600
classes = ('background', 'scene0_disc', 'scene0_square', 'scene1_disc', 'scene1_square')
data_root = 'data/synthetic_cue_ade20k_192x384'

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255, size=img_size),
    backbone=dict(type='RoPEViT',
                  arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=2,
                            mlp_ratio=2.0),
                  img_size=img_size, patch_size=16, out_indices=(num_layers - 1, ),
                  use_rope=True, use_abs_pos_embed=False),
    decode_head=dict(type='FCNHead', in_channels=embed_dims, in_index=0, channels=embed_dims,
                     num_convs=2, concat_input=False, dropout_ratio=0.0,
                     num_classes=len(classes), norm_cfg=dict(type='BN', requires_grad=True),
                     align_corners=False,
                     # objects are rare: the background class weighs 0.25 (mmseg's loss
                     # with class weights fails on ignored pixels, which the random-token
                     # variant has; this one gives PyTorch's weighted mean there too)
                     loss_decode=dict(type='IgnoreAwareCrossEntropyLoss', loss_weight=1.0,
                                      class_weight=[0.25] + [1.0] * (len(classes) - 1),
                                      avg_non_ignore=True)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                    'winwin_windows', 'winwin_token_index', 'winwin_grid', 'winwin_patch_size'))
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(type='SyntheticADE20KDataset', data_root=data_root,
               metainfo=dict(classes=classes))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                                    weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=iters // 10),
    dict(type='PolyLR', power=1.0, begin=iters // 10, end=iters, eta_min=0.0, by_epoch=False)
]
# no validation during training: the experiment tests once, on whole images, at the end
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=iters // 5, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
