# Plain RoPE ViT (6 blocks, 64-d, patch 8) + FCN head trained from scratch on generated
# 256x256 ADE20K-layout images (32x32 = 1024 tokens, one scene: background, disc, square),
# for the token-reduction comparison on the same weights (Expedite, ToMe-style merging,
# pooling): python -m mmwinwin.experiments.token_reduction (it generates the data, sets
# data_root and may change the size and schedule). The backbone is ExpeditedRoPEViT with
# expedite=None (the plain model), so each reduction is a backbone option on this checkpoint.
_base_ = ['../../winwin/experiments/fcn_rope-vit-4l-64d_1xb4-600i_synthetic-cue-ade20k-192x384.py']
img_size = (256, 256)
embed_dims = 64
num_layers = 6
iters = 300
classes = ('background', 'scene0_disc', 'scene0_square')
data_root = 'data/synthetic_ade20k_256x256_1scene'

model = dict(
    data_preprocessor=dict(size=img_size),
    backbone=dict(type='ExpeditedRoPEViT', expedite=None,
                  arch=dict(embed_dims=embed_dims, num_layers=num_layers, num_heads=2,
                            mlp_ratio=4.0),
                  img_size=img_size, patch_size=8, out_indices=(num_layers - 1, )),
    decode_head=dict(num_classes=len(classes),
                     loss_decode=dict(class_weight=[0.25] + [1.0] * (len(classes) - 1))))
dataset = dict(type='SyntheticADE20KDataset', data_root=data_root,
               metainfo=dict(classes=classes))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root,
                                                   metainfo=dict(classes=classes)))
test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=iters // 10),
    dict(type='PolyLR', power=1.0, begin=iters // 10, end=iters, eta_min=0.0, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
default_hooks = dict(
    logger=dict(interval=iters // 6),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters // 3,
                    max_keep_ckpts=1))
