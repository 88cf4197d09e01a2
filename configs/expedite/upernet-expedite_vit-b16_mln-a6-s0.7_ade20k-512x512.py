# Expedite on mmseg's UPerNet ViT-B/16 (+ MultiLevelNeck), ADE20K. Whole-image test at
# varying sizes, so the cluster grid is a fraction of the token grid (0.7 per axis).
# Levels 3 and 6 come before clustering; levels 9 and 12 are reconstructed from their own
# layers before the neck (reconstruction before the decode head, the default).
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py', '../_base_/mmwinwin_runtime.py']
model = dict(
    data_preprocessor=dict(type='CheckedSegDataPreProcessor'),  # input checks (mmwinwin)
    backbone=dict(
        type='ExpeditedMMSegViT',
        expedite=dict(alpha=6, cluster_scale=0.7, iters=5, window=5, temperature=0.02, k=20)))
