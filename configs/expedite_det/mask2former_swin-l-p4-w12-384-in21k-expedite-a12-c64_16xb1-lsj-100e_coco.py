# Expedite (no fine-tuning) on Mask2Former Swin-L COCO instance segmentation: after block
# 12, 64 = 8x8 clusters per 12x12 window (5 iterations, 11x11 candidate neighbourhood,
# t = 0.01), reconstruction with k = 60 at the end of stage 3. Same checkpoint as
# ./mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco.py.
_base_ = ['../_base_/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco.py']
model = dict(
    data_preprocessor=dict(type='CheckedDetDataPreprocessor'),  # input checks (mmwinwin)
    backbone=dict(
        type='ExpeditedSwinTransformer',
        expedite=dict(alpha=12, num_clusters=64, iters=5, window=11, temperature=0.01, k=60)))
