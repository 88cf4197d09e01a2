# Expedite on this project's UPerNet RoPE ViT-B/16 (ADE20K). Clusters get the
# assignment-weighted mean (y, x) of their tokens as RoPE positions.
_base_ = '../rope_vit/upernet_rope-vit-b16_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViT',
        expedite=dict(alpha=6, cluster_scale=0.7, iters=5, window=5, temperature=0.02, k=20)))
