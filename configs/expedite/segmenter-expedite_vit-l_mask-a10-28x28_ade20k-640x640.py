# Expedite on mmseg's Segmenter ViT-L/16 (ADE20K, 640x640 slide test -> 40x40 tokens).
# Paper setting: cluster after layer 10 into 28x28, 5 iterations, window 5, t 0.02, k 20,
# reconstruction on the logits after the mask-transformer head (the paper's placement).
# Any checkpoint of mmseg's Segmenter ViT-L config loads unchanged (same keys):
#   python tools/test.py \
#       configs/expedite/segmenter-expedite_vit-l_mask-a10-28x28_ade20k-640x640.py CKPT
_base_ = ['mmseg::segmenter/segmenter_vit-l_mask_8xb1-160k_ade20k-512x512.py', '../_base_/mmwinwin_runtime.py']
expedite = dict(alpha=10, cluster_grid=(28, 28), iters=5, window=5, temperature=0.02, k=20,
                reconstruct='logits')
model = dict(
    data_preprocessor=dict(type='CheckedSegDataPreProcessor'),  # input checks (mmwinwin)
    type='ExpeditedEncoderDecoder',
    backbone=dict(type='ExpeditedMMSegViT', expedite=expedite))
