# Mask2Former Swin-L (window 12, ImageNet-22k 384 pre-training) for COCO instance
# segmentation -- mmdet 3.3 ships Swin-T/S instance configs only; this is the Swin-L one
# the Expedite paper evaluates (its expedited twin: ...-expedite-a12-c64_...).
_base_ = ['mmdet::mask2former/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py', './mmwinwin_runtime.py']
default_scope = 'mmdet'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa
depths = [2, 2, 18, 2]
model = dict(
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=192,
        depths=depths,
        num_heads=[6, 12, 24, 48],
        window_size=12,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(num_queries=200, in_channels=[192, 384, 768, 1536]))
train_dataloader = dict(batch_size=1, num_workers=1)
