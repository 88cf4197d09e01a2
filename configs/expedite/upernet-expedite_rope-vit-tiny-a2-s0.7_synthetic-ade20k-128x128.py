# Expedite on the tiny RoPE ViT + UPerNet of the synthetic ADE20K config (4 layers, 8x8 tokens):
# cluster after layer 2 into ~6x6 (0.7 per axis), window 3, k 9.
_base_ = '../rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViT',
        expedite=dict(alpha=2, cluster_scale=0.7, iters=5, window=3, temperature=0.02, k=9)))
