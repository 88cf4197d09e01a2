# Expedite on the ViTDet-style Mask R-CNN: after block 6 of 12, each 14x14 attention
# window is clustered to 64 = 8x8 tokens (RoPE positions = assignment-weighted means);
# windowed blocks attend among a window's clusters, global blocks among all clusters;
# the full grid is rebuilt (k = 20) before the simple FPN. Same checkpoint as
# ../vitdet/mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py.
_base_ = ['../vitdet/mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py']
model = dict(
    backbone=dict(
        type='ExpeditedRoPEViTDet',
        expedite=dict(alpha=6, num_clusters=64, iters=5, window=5, temperature=0.02, k=20)))
