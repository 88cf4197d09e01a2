"""Generated COCO data for the Win-Win detection evidence (``generate_coco(task=...)``):
in the ``context`` task an object's class can only be read off a beacon beyond one window,
in the ``local`` task off the object itself; both load through mmdet's CocoDataset.

Everything is checked against the pixels of the written JPEGs and the decoded masks,
measured here independently of the generator."""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest

import mmwinwin  # noqa: F401
from mmwinwin.datasets.synthetic import cue_metainfo, generate_coco
from mmwinwin.fileio.panoptic import read_panoptic_png

H, W, GAP = 128, 256, 64  # the evidence's images; 64 px = a window of 4 tokens of 16 px


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = {}
    for task in ('context', 'local'):
        root = str(tmp_path_factory.mktemp(task))
        generate_coco(root, num_train=6, num_val=2, img_size=(H, W), seed=3, task=task,
                      cue_gap=GAP)
        out[task] = root
    return out


def _instances(root: str, split: str):
    """[(RGB image, [(category name, bool mask, bbox xywh)])] of a split, masks decoded from
    the polygons with pycocotools."""
    from pycocotools import mask as mask_utils
    js = json.load(open(osp.join(root, 'annotations', f'instances_{split}.json')))
    names = {c['id']: c['name'] for c in js['categories']}
    out = []
    for img in js['images']:
        rgb = mmcv.imread(osp.join(root, split, img['file_name']), channel_order='rgb')
        objs = []
        for a in js['annotations']:
            if a['image_id'] == img['id']:
                m = mask_utils.decode(mask_utils.merge(
                    mask_utils.frPyObjects(a['segmentation'], H, W))).astype(bool)
                objs.append((names[a['category_id']], m, a['bbox']))
        out.append((rgb, objs))
    return out


def _beacon(rgb: np.ndarray):
    """The saturated square of an image: ('red' | 'blue', box x0, y0, x1, y1 exclusive)."""
    f = rgb.astype(np.int64)
    red = (f[..., 0] > 150) & (f[..., 1] < 110) & (f[..., 2] < 110)
    blue = (f[..., 2] > 150) & (f[..., 0] < 110) & (f[..., 1] < 150)
    colour = 'red' if red.sum() > blue.sum() else 'blue'
    ys, xs = np.nonzero(red if colour == 'red' else blue)
    return colour, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def _gap(box, bbox) -> float:
    """Chebyshev gap between a box (x0, y0, x1, y1) and a COCO bbox (x, y, w, h)."""
    x0, y0, x1, y1 = bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]
    return max(box[0] - x1, x0 - box[2], box[1] - y1, y0 - box[3], 0)


def test_context_class_is_the_distant_beacon_not_the_object(data):
    per_class = {}
    for split in ('train2017', 'val2017'):
        for rgb, objs in _instances(data['context'], split):
            colour, box = _beacon(rgb)
            assert objs
            for name, m, bbox in objs:
                # the class is the beacon's colour ...
                assert name == f'{colour}_scene_object'
                # ... and the beacon lies beyond any 64-px window that holds the object
                assert _gap(box, bbox) >= GAP
                inner = m.copy()  # 2 px inside the outline, off the JPEG ringing
                for axis in (0, 1):
                    inner &= np.roll(m, 2, axis) & np.roll(m, -2, axis)
                per_class.setdefault(name, []).append(rgb[inner].mean(0))
    assert set(per_class) == {'red_scene_object', 'blue_scene_object'}
    means = {k: np.array(v) for k, v in per_class.items()}
    # objects of both classes are the same grey: every instance's mean colour is neutral
    # (R = G = B) and the class means agree, so the object's own pixels carry no class
    for v in means.values():
        assert np.abs(v - v.mean(1, keepdims=True)).max() < 4
    red, blue = means['red_scene_object'].mean(0), means['blue_scene_object'].mean(0)
    assert np.abs(red - blue).max() < 3
    # the same colour test that names every local-task object (below) is chance here
    assert all(np.abs(v[:, 0] - v[:, 2]).max() < 6 for v in means.values())


def test_local_class_is_the_object_colour_beacon_uninformative(data):
    agree, total = 0, 0
    for split in ('train2017', 'val2017'):
        for rgb, objs in _instances(data['local'], split):
            colour, _box = _beacon(rgb)
            for name, m, _bbox in objs:
                r, _g, b = rgb[m].astype(np.float64).mean(0)
                assert name == ('red_object' if r > b else 'blue_object')
                agree += name.startswith(colour)
                total += 1
    # the beacon is drawn independently of the objects: it does not name them all
    assert total >= 10 and 0 < agree < total


def test_panoptic_segments_match_instances(data):
    root = data['context']
    pan = json.load(open(osp.join(root, 'annotations', 'panoptic_val2017.json')))
    inst = _instances(root, 'val2017')
    for ann, (_rgb, objs) in zip(pan['annotations'], inst):
        ids = read_panoptic_png(osp.join(root, 'annotations', 'panoptic_val2017',
                                         ann['file_name']))
        things = [s for s in ann['segments_info'] if s['category_id'] != 5]
        assert len(things) == len(objs)
        union = np.zeros((H, W), bool)
        for s, (_name, m, _bbox) in zip(things, objs):
            assert np.array_equal(ids == s['id'], m)
            union |= m
        stuff = [s for s in ann['segments_info'] if s['category_id'] == 5]
        assert len(stuff) == 1 and np.array_equal(ids == stuff[0]['id'], ~union)


def test_loads_through_mmdet_coco_dataset(data):
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    root = data['context']
    classes = cue_metainfo('context')['classes']
    ds = DATASETS.build(dict(
        type='CocoDataset', data_root=root, ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'), metainfo=dict(classes=classes),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]))
    assert len(ds) == 6
    for i, (rgb, objs) in enumerate(_instances(root, 'train2017')):
        d = ds[i]
        assert d['img'].shape == (H, W, 3)
        assert len(d['gt_bboxes']) == len(d['gt_masks']) == len(objs)
        colour, _box = _beacon(rgb)
        assert set(d['gt_bboxes_labels'].tolist()) == {0 if colour == 'red' else 1}
        for (_name, m, _bbox), gm in zip(objs, d['gt_masks'].to_ndarray()):
            assert np.array_equal(gm.astype(bool), m)


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match='Unknown task'):
        generate_coco(str(tmp_path), task='contxt')
    with pytest.raises(ValueError, match='smaller cue_gap'):
        generate_coco(str(tmp_path), img_size=(48, 64), task='context', cue_gap=64)
