# CroCo-Flow-style binocular RoPE ViT-B/16: shared encoder, 12-block cross-attention
# decoder (768 wide), DPT head to full-resolution flow. Win-Win windows set per config.
model = dict(
    type='WinWinFlowEstimator',
    data_preprocessor=dict(type='FlowDataPreprocessor', size_divisor=16,
                           mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    net=dict(
        encoder=dict(arch='base', patch_size=16, rope_base=100.0, drop_path_rate=0.0),
        dec_embed_dims=768, dec_num_layers=12, dec_num_heads=12, dec_mlp_ratio=4.0,
        head_hooks=(0, 6, 9, 12), head_features=256, head_layer_dims=(96, 192, 384, 768)),
    windows=None,  # full-resolution training; Win-Win configs set dict(num_windows, window_size)
    # Start from CroCo-v2 pre-training (encoder + decoder) as in the paper; the net above
    # matches CroCo_V2_ViTBase_BaseDecoder (ViT-B encoder, 768 x 12 decoder, 12 heads, RoPE100):
    # pretrained='checkpoints/CroCo_V2_ViTBase_BaseDecoder.pth',
    pretrained=None,
    pretrained_encoder=None)  # encoder only (timm / MAE / CroCo keys); not with pretrained
