# Mask R-CNN (boxes + instance masks) with a ViTDet-style plain RoPE ViT-B/16:
# window attention (14x14 tokens) in most blocks, global attention in blocks 2, 5, 8, 11,
# a simple feature pyramid from the stride-16 map, large-scale jitter 1024 (ViTDet).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
    '../_base_/mmwinwin_runtime.py',
]
default_scope = 'mmdet'

# set to a ViT-B/16 checkpoint (timm / MAE / mmseg layout; converted on load)
pretrained = None
image_size = (1024, 1024)
batch_augments = [dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]

model = dict(
    data_preprocessor=dict(type='CheckedDetDataPreprocessor',  # input checks (mmwinwin)
                           pad_size_divisor=32, batch_augments=batch_augments),
    backbone=dict(
        _delete_=True,
        type='RoPEViTDet',
        arch='base',
        patch_size=16,
        partition_size=14,
        global_indices=[2, 5, 8, 11],
        out_indices=[-1],
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    neck=dict(
        _delete_=True,
        type='mmwinwin.SimpleFPN',
        in_channels=768,
        out_channels=256,
        scales=(4.0, 2.0, 1.0, 0.5),
        num_outs=5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=dict(type='GN', num_groups=32)),
        mask_head=dict(norm_cfg=dict(type='GN', num_groups=32))))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=None)
