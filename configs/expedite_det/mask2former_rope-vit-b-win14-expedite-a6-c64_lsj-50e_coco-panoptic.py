# Expedite on the ViTDet-style Mask2Former (coco-panoptic): 64 = 8x8 clusters per 14x14 window after
# block 6 of 12, reconstruction (k = 20) before the simple FPN. Same checkpoint as
# ../vitdet/mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py.
_base_ = ['../vitdet/mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py']
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViTDet',
        expedite=dict(alpha=6, num_clusters=64, iters=5, window=5, temperature=0.02, k=20)))
