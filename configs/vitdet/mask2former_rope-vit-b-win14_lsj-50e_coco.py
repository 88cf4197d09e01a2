# Mask2Former (COCO instance segmentation) with a ViTDet-style plain RoPE ViT-B/16.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', '../_base_/mmwinwin_runtime.py']
default_scope = 'mmdet'

pretrained = None  # a ViT-B/16 checkpoint (timm / MAE / mmseg layout)
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
