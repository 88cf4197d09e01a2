# Tiny baseline on generated pairs (trains on CPU): whole 128x192 frames (8x12 tokens).
# Data: python tools/dataset_converters/generate_synthetic.py sintel-flow \
#     data/synthetic_flow --size 128 192 --num-train 256 --num-val 8 --max-flow 24
# From scratch, the tiny model needs the cross-attention offset readout + matching init
# (dec_offset_readout) to learn motion at all, and motions of about a patch (16 px) or
# more: see docs/flow.md, "Measured on generated pairs".
_base_ = ['../_base_/models/crocoflow_rope-vit-b16.py', '../_base_/datasets/synthetic_flow.py',
          '../_base_/default_runtime_flow.py']
dims = 64
model = dict(
    net=dict(
        encoder=dict(arch=dict(_delete_=True, embed_dims=dims, num_layers=2, num_heads=2,
                               mlp_ratio=2.0)),
        dec_embed_dims=dims, dec_num_layers=2, dec_num_heads=2, dec_mlp_ratio=2.0,
        head_hooks=(0, 1, 2, 2), head_features=32, head_layer_dims=(16, 32, 64, 64),
        dec_offset_readout=True),
    windows=None)
optim_wrapper = dict(type='OptimWrapper', clip_grad=dict(max_norm=1.0),
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=40, eta_min=1e-5)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40, val_interval=40)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=40, max_keep_ckpts=1))
randomness = dict(seed=0)
