# Expedite on mmseg's DPT ViT-B/16, ADE20K. Multi-level outputs (layers 3, 6, 9, 12, with
# their cls tokens for DPT's readout) are reconstructed from their own layers before the head.
# alpha 6 and t 1.0 follow the paper's DPT setting (ViT-Hybrid NYUv2: alpha 6, 28x28, t 1.0).
_base_ = ['mmseg::dpt/dpt_vit-b16_8xb2-160k_ade20k-512x512.py', '../_base_/mmwinwin_runtime.py']
model = dict(
    data_preprocessor=dict(type='CheckedSegDataPreProcessor'),  # input checks (mmwinwin)
    backbone=dict(
        type='ExpeditedMMSegViT',
        expedite=dict(alpha=6, cluster_scale=0.7, iters=5, window=5, temperature=1.0, k=20)))
