# Monocular depth: plain RoPE ViT-B/16 (blocks 3, 6, 9, 12) + ViTDepthHead (DPT-style fusion,
# x4 upsampling), SiLogLoss. Depth 0 is invalid (padding value and ignored by the loss).
_base_ = ['../mmwinwin_runtime.py']  # custom_imports and the hooks every config needs
data_preprocessor = dict(
    type='CheckedSegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,
    size_divisor=16)
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='RoPEViT',
        arch='base',
        patch_size=16,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1,
        use_rope=True,
        rope_base=100.0,
        init_cfg=None),
    decode_head=dict(
        type='ViTDepthHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        channels=256,
        num_upsample=2,
        max_depth=10.0,
        loss_decode=dict(type='SiLogLoss')),
    test_cfg=dict(mode='whole'))
