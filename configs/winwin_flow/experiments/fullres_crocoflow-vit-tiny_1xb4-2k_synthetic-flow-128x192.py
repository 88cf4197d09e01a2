# Learnability run on generated pairs (CPU, ~5 min): the tiny model trained on whole
# 128x192 frames for 2000 iterations of batch 4, evaluated every 500 on 8 held-out pairs.
# Data: python tools/dataset_converters/generate_synthetic.py sintel-flow \
#     data/synthetic_flow --size 128 192 --num-train 256 --num-val 8 --max-flow 24
# Results (docs/flow.md, "Measured on generated pairs"): zero flow EPE 10.87, per-image
# mean-flow oracle 6.45 on these held-out pairs.
_base_ = ['../fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py']
iters = 2000
train_dataloader = dict(batch_size=4)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=iters,
                        eta_min=1e-5)]
train_cfg = dict(max_iters=iters, val_interval=500)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=iters))
