# Win-Win: train on 2 random windows of 10x10 tokens per pair (same windows in both
# frames); test in one pass on the whole 1024x436 frames.
_base_ = ['./fullres_crocoflow-vit-b16_1xb2-100k_sintel-1024x436.py']
model = dict(windows=dict(_delete_=True, num_windows=2, window_size=10, margin=0))
