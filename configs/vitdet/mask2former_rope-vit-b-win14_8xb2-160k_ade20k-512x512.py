# Mask2Former (ADE20K semantic segmentation, through mmseg) with a ViTDet-style plain
# RoPE ViT-B/16 and a simple FPN.
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py', '../_base_/mmwinwin_hooks.py']
# the mmseg base sets custom_imports (mmdet.models) too, so it is replaced here
custom_imports = dict(imports=['mmwinwin'], allow_failed_imports=False)
default_scope = 'mmseg'

pretrained = None  # a ViT-B/16 checkpoint (timm / MAE / mmseg layout)
model = dict(
    data_preprocessor=dict(type='CheckedSegDataPreProcessor'),  # input checks (mmwinwin)
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
    decode_head=dict(in_channels=[256, 256, 256, 256]))
