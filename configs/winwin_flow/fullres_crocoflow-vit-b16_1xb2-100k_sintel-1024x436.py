# Baseline: CroCo-Flow-style ViT-B/16 trained on whole 1024x436 frames (all tokens).
_base_ = [
    '../_base_/models/crocoflow_rope-vit-b16.py', '../_base_/datasets/sintel_flow.py',
    '../_base_/schedules/flow_100k.py', '../_base_/default_runtime_flow.py']
model = dict(windows=None)
