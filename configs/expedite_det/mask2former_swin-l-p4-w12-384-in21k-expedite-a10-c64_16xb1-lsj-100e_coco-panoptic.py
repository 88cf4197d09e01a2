# Expedite (no fine-tuning) on mmdet's Mask2Former Swin-L COCO panoptic: after block 10
# (of 2 + 2 + 18 + 2) every 12x12 attention window is clustered to 64 = 8x8 tokens
# (5 iterations, 7x7 candidate neighbourhood, t = 0.05); the rest of stage 3 runs window
# attention on the clusters (relative position bias resized to 8x8); the full grid is
# rebuilt (k = 10) before patch merging. The checkpoint of the plain model loads as is:
#   python tools/test.py THIS_CONFIG mask2former_swin-l-..._coco-panoptic.pth
# Panoptic GT loads and is scored without panopticapi.
_base_ = ['mmdet::mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py', '../_base_/mmwinwin_runtime.py']
default_scope = 'mmdet'

data_root = 'data/coco/'
backend_args = None
model = dict(
    data_preprocessor=dict(type='CheckedDetDataPreprocessor'),  # input checks (mmwinwin)
    backbone=dict(
        type='ExpeditedSwinTransformer',
        expedite=dict(alpha=10, num_clusters=64, iters=5, window=7, temperature=0.05, k=10)))

test_pipeline = [
    dict(type='CheckedLoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='mmwinwin.LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='mmwinwin.CocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/'),
]
test_evaluator = val_evaluator
