# Win-Win twin of fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py: 2 windows of
# 4x4 tokens (32 of 96) per pair, the same windows in both frames (the paper's policy).
_base_ = ['./fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, num_windows=2, window_size=4, margin=0))
