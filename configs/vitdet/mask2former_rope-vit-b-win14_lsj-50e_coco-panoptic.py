# Mask2Former (COCO panoptic) with a ViTDet-style plain RoPE ViT-B/16 and a simple FPN.
# Panoptic GT loads without panopticapi (LoadPanopticAnnotations) and is scored by
# CocoPanopticMetric (COCO PQ conventions, no panopticapi).
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py', '../_base_/mmwinwin_runtime.py']
default_scope = 'mmdet'

pretrained = None  # a ViT-B/16 checkpoint (timm / MAE / mmseg layout)
image_size = (1024, 1024)
data_root = 'data/coco/'
backend_args = None

model = dict(
    data_preprocessor=dict(type='CheckedDetDataPreprocessor'),  # input checks (mmwinwin)
    backbone=dict(
        _delete_=True,
        type='RoPEViTDet',
        arch='base',
        partition_size=14,
        global_indices=[2, 5, 8, 11],
        out_indices=[-1],
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    neck=dict(type='mmwinwin.SimpleFPN', in_channels=768, out_channels=256, num_outs=4),
    panoptic_head=dict(in_channels=[256, 256, 256, 256]))

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
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='mmwinwin.LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='mmwinwin.CocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/'),
]
test_evaluator = val_evaluator
