# Tiny Win-Win on generated pairs: 2 windows of 4x4 tokens (32 of 96 tokens) per pair,
# full-resolution evaluation.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, num_windows=2, window_size=4, margin=0))
