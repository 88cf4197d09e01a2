# Tiny Mask2Former panoptic + ViTDet-style RoPE ViT on generated COCO data (CPU smoke run):
# python tools/dataset_converters/generate_synthetic.py coco data/coco_synth
_base_ = ['./mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py', '../_base_/default_runtime_tiny-coco-synth.py']
data_root = 'data/coco_synth/'
image_size = (128, 128)
num_things_classes, num_stuff_classes = 2, 2
ch = 32  # tiny Mask2Former: 32 channels, 1 encoder layer, 3 decoder layers, 10 queries
tiny_head = dict(
    in_channels=[ch, ch, ch, ch], feat_channels=ch, out_channels=ch, num_queries=10,
    pixel_decoder=dict(
        encoder=dict(num_layers=1, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=ch, num_heads=4),
            ffn_cfg=dict(embed_dims=ch, feedforward_channels=64))),
        positional_encoding=dict(num_feats=ch // 2)),
    positional_encoding=dict(num_feats=ch // 2),
    transformer_decoder=dict(num_layers=3, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=ch, num_heads=4),
        cross_attn_cfg=dict(embed_dims=ch, num_heads=4),
        ffn_cfg=dict(embed_dims=ch, feedforward_channels=64))))
model = dict(
    data_preprocessor=dict(batch_augments=[dict(
        type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
        mask_pad_value=0, pad_seg=True, seg_pad_value=255)]),
    backbone={{_base_.tiny_backbone}},
    neck=dict(in_channels=64, out_channels=ch),
    panoptic_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * 4 + [0.1]), **tiny_head),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(max_per_image=20))

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True),
    dict(type='mmwinwin.LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 2.0), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='mmwinwin.LoadPanopticAnnotations'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoPanopticDataset', data_root=data_root,
                 metainfo={{_base_.synth_metainfo}},
                 ann_file='annotations/panoptic_train2017.json',
                 data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=0, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoPanopticDataset', data_root=data_root,
                 metainfo={{_base_.synth_metainfo}},
                 ann_file='annotations/panoptic_val2017.json',
                 data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='mmwinwin.CocoPanopticMetric',
                      ann_file=data_root + 'annotations/panoptic_val2017.json',
                      seg_prefix=data_root + 'annotations/panoptic_val2017/')]
test_evaluator = val_evaluator

train_cfg = {{_base_.tiny_train_cfg}}
param_scheduler = {{_base_.tiny_param_scheduler}}
optim_wrapper = {{_base_.tiny_optim_wrapper}}
default_hooks = {{_base_.tiny_default_hooks}}
log_processor = dict(by_epoch=False)
