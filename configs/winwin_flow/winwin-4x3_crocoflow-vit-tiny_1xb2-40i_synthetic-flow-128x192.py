# Tiny Win-Win on generated pairs: 4 windows of 3x3 tokens, frame-2 windows enlarged by a
# margin of 1 token (the optional pairing policy), full-resolution evaluation.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, num_windows=4, window_size=3, margin=1))
