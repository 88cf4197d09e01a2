# Expedited twin of ../../vitdet/experiments/mask-rcnn_rope-vit-tiny-win4_600i_coco-synth-128x128.py
# (same checkpoint, same keys): after block 2 of 4, each 4x4-token window is clustered into
# 2x2 = 4 clusters (4x fewer tokens in blocks 3-4). t = 1.0 matches this tiny model's feature
# scale (see docs/detection.md: the paper's 0.02 blurs the clusters here).
_base_ = ['../../vitdet/experiments/mask-rcnn_rope-vit-tiny-win4_600i_coco-synth-128x128.py']
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViTDet',
        expedite=dict(alpha=2, num_clusters=4, iters=5, window=3, temperature=1.0, k=3)))
