"""Generated COCO data in the real formats, read by mmdet's CocoDataset and
CocoPanopticDataset (panoptic PNGs without panopticapi); the ViTDet-style backbone and
simple FPN built from the registries."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

import mmwinwin  # noqa: F401
from mmwinwin.fileio.panoptic import read_panoptic_png
from mmwinwin.datasets.synthetic import COCO_SYNTH_METAINFO, generate_coco


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('coco'))
    paths = generate_coco(root, num_train=2, num_val=2, img_size=(64, 96), seed=1)
    return root, paths


def test_formats_and_consistency(coco):
    from pycocotools import mask as mask_utils
    root, paths = coco
    inst = json.load(open(paths['instances_val2017']))
    pan = json.load(open(paths['panoptic_val2017']))
    assert [c['id'] for c in pan['categories']] == [1, 3, 5, 7]
    assert {c['id'] for c in inst['categories']} == {1, 3}
    assert any(a['iscrowd'] for a in inst['annotations'])  # crowd region as RLE
    by_img = {}
    for a in inst['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    for ann in pan['annotations']:
        ids = read_panoptic_png(osp.join(root, 'annotations', 'panoptic_val2017',
                                         ann['file_name']))
        assert ids.shape == (64, 96)
        listed = {s['id'] for s in ann['segments_info']}
        assert set(np.unique(ids).tolist()) == listed  # every pixel in a segment
        for s in ann['segments_info']:
            assert s['area'] == int((ids == s['id']).sum())
        # each instance mask (polygon or RLE) equals its panoptic segment
        things = [s for s in ann['segments_info'] if s['category_id'] in (1, 3)]
        assert len(things) == len(by_img[ann['image_id']])
        for a, s in zip(by_img[ann['image_id']], things):
            seg = a['segmentation']
            rle = (mask_utils.frPyObjects(seg, 64, 96) if isinstance(seg, list)
                   else [seg])
            m = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
            assert np.array_equal(m, ids == s['id']) and a['iscrowd'] == s['iscrowd']
    with pytest.raises(ValueError, match='too small'):
        generate_coco(root, img_size=(8, 8))


def test_read_by_mmdet_datasets(coco):
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    root, _ = coco
    ds = DATASETS.build(dict(
        type='CocoDataset', data_root=root, ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=('box', 'disc')),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]))
    d = ds[0]
    assert d['img'].shape == (64, 96, 3)
    assert len(d['gt_masks']) == len(d['gt_bboxes']) > 0
    assert d['gt_ignore_flags'].any()  # the crowd region is ignored
    ds = DATASETS.build(dict(
        type='CocoPanopticDataset', data_root=root, ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        metainfo=COCO_SYNTH_METAINFO,
        pipeline=[dict(type='LoadImageFromFile'), dict(type='mmwinwin.LoadPanopticAnnotations')]))
    d = ds[0]
    seg = d['gt_seg_map']
    # labels: things 0, 1; stuff 2 (sky, top row) and 3 (ground, bottom row)
    assert set(np.unique(seg).tolist()) <= {0, 1, 2, 3}
    assert seg[0, 48] == 2 and seg[-1, 48] == 3
    assert len(d['gt_masks']) == int((~d['gt_ignore_flags']).sum())


def test_registered_backbone_and_neck_shapes():
    from mmdet.registry import MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    cfg = dict(type='RoPEViTDet', arch=dict(embed_dims=64, num_layers=4, num_heads=2),
               partition_size=4, global_indices=[1, 3])
    backbone = MODELS.build(cfg)
    assert type(SEG_MODELS.build(cfg)).__name__ == 'RoPEViTDet'
    neck = MODELS.build(dict(type='mmwinwin.SimpleFPN', in_channels=[64], out_channels=32,
                             num_outs=5))
    feats = backbone(torch.randn(2, 3, 80, 112))
    assert isinstance(feats, tuple) and feats[0].shape == (2, 64, 5, 7)
    outs = neck(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(20, 28), (10, 14), (5, 7), (2, 3), (1, 2)]
    assert all(o.shape[:2] == (2, 32) for o in outs)
    with pytest.raises(ValueError, match='one input map'):
        MODELS.build(dict(type='mmwinwin.SimpleFPN', in_channels=[64, 64]))
    with pytest.raises(ValueError, match='scales'):
        MODELS.build(dict(type='mmwinwin.SimpleFPN', in_channels=64, scales=(3.0,)))
