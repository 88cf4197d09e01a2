# Expedite on mmseg's Segmenter ViT-B/16 (ADE20K, 512x512 slide test -> 32x32 tokens).
# Not in the paper: the ViT-L setting scaled to 12 layers and a 32x32 token grid (cluster
# after layer 5 of 12 into 22x22 ~ 0.7 per axis); tune alpha / grid with
# tools/analysis_tools/benchmark_expedite.py.
_base_ = ['mmseg::segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-512x512.py', '../_base_/mmwinwin_runtime.py']
expedite = dict(alpha=5, cluster_grid=(22, 22), iters=5, window=5, temperature=0.02, k=20,
                reconstruct='logits')
model = dict(
    data_preprocessor=dict(type='CheckedSegDataPreProcessor'),  # input checks (mmwinwin)
    type='ExpeditedEncoderDecoder',
    backbone=dict(type='ExpeditedMMSegViT', expedite=expedite))
