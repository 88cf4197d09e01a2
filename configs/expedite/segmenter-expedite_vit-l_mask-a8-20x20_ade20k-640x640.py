# Expedite on Segmenter ViT-L/16 ADE20K 640, the paper's most aggressive setting (alpha 8, 20x20).
_base_ = './segmenter-expedite_vit-l_mask-a10-28x28_ade20k-640x640.py'
model = dict(backbone=dict(expedite=dict(alpha=8, cluster_grid=(20, 20))))
