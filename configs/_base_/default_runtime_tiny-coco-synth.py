# Shared settings (unique names, used as {{_base_.tiny_*}}) of the tiny CPU configs on generated COCO data
# (python tools/dataset_converters/generate_synthetic.py coco data/coco_synth).
tiny_arch = dict(embed_dims=64, num_layers=4, num_heads=2)
tiny_backbone = dict(
    _delete_=True, type='RoPEViTDet', arch=tiny_arch, patch_size=16, partition_size=4,
    global_indices=[1, 3], out_indices=[-1], init_cfg=None)
synth_metainfo = dict(
    classes=('box', 'disc', 'sky', 'ground'), thing_classes=('box', 'disc'),
    stuff_classes=('sky', 'ground'))

tiny_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
tiny_param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=2)]
tiny_optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05), clip_grad=dict(max_norm=1.0))
tiny_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=1))
