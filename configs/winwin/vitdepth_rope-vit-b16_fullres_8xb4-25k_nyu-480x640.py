# Full-resolution baseline for NYU Depth v2: RoPE ViT-B/16 + ViTDepthHead trained on whole
# 480x640 images (30x40 = 1200 tokens), tested whole, mmseg's DepthMetric with the NYU crop.
_base_ = [
    '../_base_/models/vitdepth_rope-vit-b16.py',
    'mmseg::_base_/datasets/nyu.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/adamw-layer-decay_poly_25k.py',
]
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type='DepthMetric', min_depth_eval=1e-3, max_depth_eval=10.0,
                     crop_type='nyu_crop')
test_evaluator = val_evaluator
default_hooks = dict(visualization=dict(type='SegVisualizationHook', draw=False))
