# Win-Win with the optional pairing policy: frame-2 windows enlarged by 2 tokens (32 px) on
# every side, so motions of up to 2 patches that leave a 4x4-token window keep their match.
_base_ = ['./fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-128x192.py']
model = dict(windows=dict(_delete_=True, num_windows=2, window_size=4, margin=2))
