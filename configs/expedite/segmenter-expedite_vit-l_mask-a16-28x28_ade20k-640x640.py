# Expedite on Segmenter ViT-L/16 ADE20K 640, the paper's milder setting (alpha 16, 28x28).
_base_ = './segmenter-expedite_vit-l_mask-a10-28x28_ade20k-640x640.py'
model = dict(backbone=dict(expedite=dict(alpha=16)))
