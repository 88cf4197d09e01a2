# Tiny expedited twin of ../vitdet/mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py
# (same checkpoint): 4 = 2x2 clusters per 4x4 window after block 2 of 4.
_base_ = ['../vitdet/mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py']
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViTDet',
        expedite=dict(alpha=2, num_clusters=4, iters=5, window=3, temperature=0.05, k=3)))
