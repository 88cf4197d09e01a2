"""Panoptic quality (COCO conventions) against torchmetrics' PanopticQuality, by hand
on the cases where the two conventions differ, and through the registered metric on the
real COCO panoptic examples."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from conftest import SHARED_DATA

from mmwinwin.evaluation.functional import (accumulate, id_to_rgb, pq_image_stats, pq_summary,
                                            rgb_to_id)

THINGS, STUFFS = {1, 2}, {3, 4}
CATS = {1: True, 2: True, 3: False, 4: False}
VOID = 255  # torchmetrics: a category outside things and stuffs is void


def _random_panoptic(rng, h=24, w=32, n_things=4, void=True):
    """Stuff background (two bands), a few thing rectangles, optional void strip.
    Returns (ids, segments, torchmetrics map (H, W, 2))."""
    ids = np.zeros((h, w), np.int64)
    segs = []
    split = rng.integers(h // 3, 2 * h // 3)
    ids[:split], ids[split:] = 10, 11
    segs += [dict(id=10, category_id=3), dict(id=11, category_id=4)]
    for k in range(n_things):
        y, x = rng.integers(0, h - 6), rng.integers(0, w - 6)
        hh, ww = rng.integers(4, 10), rng.integers(4, 12)
        ids[y:y + hh, x:x + ww] = 100 + k
        segs.append(dict(id=100 + k, category_id=int(rng.integers(1, 3))))
    if void:
        ids[:, :2] = 0
    present = set(np.unique(ids).tolist())
    segs = [s for s in segs if s['id'] in present]
    return ids, segs


def _to_tm(ids, segs):
    out = np.zeros(ids.shape + (2,), np.int64)
    out[..., 0] = VOID
    for s in segs:
        m = ids == s['id']
        out[m, 0] = s['category_id']
        out[m, 1] = s['id'] if s['category_id'] in THINGS else 0
    return torch.from_numpy(out)


def _perturb(rng, ids, segs):
    """A prediction: shifted map, some categories swapped, one segment split; every
    pixel assigned (the subset where COCO and torchmetrics conventions agree)."""
    pred = np.roll(ids, shift=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
    pred = pred.copy()
    pred[pred == 0] = 10  # no unassigned pixels
    cats = {s['id']: s['category_id'] for s in segs}
    cats.setdefault(10, 3)
    for sid in list(cats):
        if sid >= 100 and rng.random() < 0.3:
            cats[sid] = 3 - cats[sid]  # thing 1 <-> 2
    things = [sid for sid in cats if sid >= 100 and (pred == sid).any()]
    if things:
        sid = things[0]
        ys, xs = np.nonzero(pred == sid)
        cut = pred == sid
        cut[:, : int(np.median(xs))] = False
        pred[cut] = 500
        cats[500] = cats[sid]
    present = set(np.unique(pred).tolist())
    return pred, [dict(id=k, category_id=v) for k, v in cats.items() if k in present]


def _torchmetrics(pairs):
    pq = PanopticQuality(things=THINGS, stuffs=STUFFS, return_per_class=True,
                         return_sq_and_rq=True, allow_unknown_preds_category=True)
    pq_all = PanopticQuality(things=THINGS, stuffs=STUFFS, allow_unknown_preds_category=True)
    for (g, gs), (p, ps) in pairs:
        t, q = _to_tm(g, gs)[None], _to_tm(p, ps)[None]
        pq.update(q, t)
        pq_all.update(q, t)
    per_class = pq.compute().numpy()  # rows: categories sorted (1, 2, 3, 4); cols pq, sq, rq
    return float(pq_all.compute()), {c: per_class[i] for i, c in enumerate(sorted(CATS))}


def _ours(pairs):
    total = {}
    for (g, gs), (p, ps) in pairs:
        accumulate(total, pq_image_stats(g, gs, p, ps))
    return pq_summary(total, CATS)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_partial_matches_torchmetrics(seed):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(3):
        gt = _random_panoptic(rng)
        pairs.append((gt, _perturb(rng, *gt)))
    ours = _ours(pairs)
    tm_pq, tm_cls = _torchmetrics(pairs)
    assert ours['All']['n'] > 0
    np.testing.assert_allclose(ours['All']['pq'], tm_pq, atol=1e-6)
    for cat, s in ours['per_class'].items():
        np.testing.assert_allclose([s['pq'], s['sq'], s['rq']], tm_cls[cat], atol=1e-6)
    # things / stuff averages over the categories present
    for name, keep in (('Things', THINGS), ('Stuff', STUFFS)):
        vals = [tm_cls[c][0] for c in ours['per_class'] if c in keep]
        np.testing.assert_allclose(ours[name]['pq'], np.mean(vals) if vals else 0.0, atol=1e-6)


def test_perfect_prediction():
    rng = np.random.default_rng(5)
    gt = _random_panoptic(rng)  # includes a void strip, left unassigned in the prediction
    ours = _ours([(gt, gt)])
    tm_pq, _ = _torchmetrics([(gt, gt)])
    assert ours['All']['pq'] == pytest.approx(1.0) and tm_pq == pytest.approx(1.0)
    assert ours['Things']['sq'] == pytest.approx(1.0) and ours['Stuff']['rq'] == pytest.approx(1.0)


def test_empty_ground_truth_and_empty_prediction():
    rng = np.random.default_rng(6)
    ids, segs = _random_panoptic(rng, void=False)
    void_gt = (np.zeros_like(ids), [])
    # predictions entirely on void ground truth are ignored by both conventions
    ours = _ours([(void_gt, (ids, segs))])
    tm_pq, _ = _torchmetrics([(void_gt, (ids, segs))])
    assert ours['All'] == dict(pq=0.0, sq=0.0, rq=0.0, n=0)
    assert np.isnan(tm_pq)  # torchmetrics: mean over no category; ours reports 0 with n = 0
    # an empty prediction: COCO counts every ground-truth segment as a false negative
    # (torchmetrics instead ignores target segments covered by unassigned prediction
    # pixels, so this case is checked by hand only)
    stats = pq_image_stats(ids, segs, np.zeros_like(ids), [])
    assert sum(s[2] for s in stats.values()) == len(segs)
    assert sum(s[0] + s[1] for s in stats.values()) == 0
    assert _ours([((ids, segs), (np.zeros_like(ids), []))])['All']['pq'] == 0.0


def test_crowd_regions():
    """COCO crowd: never matched, never FN; a same-category prediction mostly on the
    crowd region is no FP. For same-category predictions that equals torchmetrics with
    the crowd region made void (torchmetrics has no crowd); a different-category
    prediction on a crowd region is an FP under COCO (checked by hand)."""
    ids = np.full((20, 20), 10, np.int64)
    ids[2:8, 2:8] = 100   # person
    ids[10:18, 10:18] = 200  # crowd of category 1
    gt_segs = [dict(id=10, category_id=3), dict(id=100, category_id=1),
               dict(id=200, category_id=1, iscrowd=1)]
    pred = ids.copy()
    pred[11:18, 11:17] = 300  # same category over the crowd
    pred_segs = [dict(id=10, category_id=3), dict(id=100, category_id=1),
                 dict(id=200, category_id=1), dict(id=300, category_id=1)]
    ours = _ours([((ids, gt_segs), (pred, pred_segs))])
    crowd_void = [s for s in gt_segs if not s.get('iscrowd')]
    tm_pq, tm_cls = _torchmetrics([((ids, crowd_void), (pred, pred_segs))])
    assert ours['All']['pq'] == pytest.approx(tm_pq)
    for cat, s in ours['per_class'].items():
        np.testing.assert_allclose([s['pq'], s['sq'], s['rq']], tm_cls[cat], atol=1e-6)
    stats = pq_image_stats(ids, gt_segs, pred, pred_segs)
    np.testing.assert_array_equal(stats[1][:3], [1, 0, 0])  # crowd: no FN, no FP
    # stuff IoU: union leaves out nothing (no void); intersection = 400 - 36 - 64 - 0
    # different category on the crowd region -> a false positive under COCO
    pred_segs[3] = dict(id=300, category_id=2)
    stats = pq_image_stats(ids, gt_segs, pred, pred_segs)
    np.testing.assert_array_equal(stats[2][:3], [0, 1, 0])


def test_void_in_union_and_half_void_predictions():
    ids = np.zeros((10, 10), np.int64)
    ids[:, :5] = 1
    gt = [dict(id=1, category_id=1)]
    pred = np.full((10, 10), 7, np.int64)  # covers the thing (50 px) and the void (50 px)
    stats = pq_image_stats(ids, gt, pred, [dict(id=7, category_id=1)])
    # union = 100 + 50 - 50 - 50 (void part) = 50 -> IoU 1
    np.testing.assert_allclose(stats[1], [1, 0, 0, 1.0])
    pred[:, :4] = 8  # now 7 is 60 px: 10 on the thing, 50 on void -> IoU with gt 10/50
    stats = pq_image_stats(ids, gt, pred, [dict(id=7, category_id=1), dict(id=8, category_id=2)])
    assert stats[1][2] == 1 and stats[1][1] == 0  # FN; 7 is > half void so no FP
    assert stats[2][1] == 1  # 8 lies on the thing: an FP


def test_bad_inputs():
    with pytest.raises(ValueError, match='same size'):
        pq_image_stats(np.zeros((4, 4)), [], np.zeros((4, 5)), [])
    with pytest.raises(KeyError, match='category_id'):
        pq_image_stats(np.zeros((4, 4)), [dict(id=1)], np.zeros((4, 4)), [])
    with pytest.raises(KeyError, match='not among'):
        pq_summary({9: np.ones(4)}, CATS)
    ids = np.array([[0, 1, 256], [65536, 16777215, 3]])
    assert np.array_equal(rgb_to_id(id_to_rgb(ids)), ids)


# ../shared/data/coco_panoptic_samples beside the repository (see SHARED_DATA in conftest)
SAMPLES = osp.join(SHARED_DATA, 'coco_panoptic_samples')


@pytest.mark.skipif(not osp.isfile(osp.join(SAMPLES, 'panoptic_examples.json')),
                    reason=f'real COCO panoptic samples not available at {SAMPLES}')
def test_registered_metric_on_real_coco_examples():
    """The real COCO panoptic examples, predicted as their own ground truth through the
    registered metric (mmdet's pred_panoptic_seg encoding): PQ = SQ = RQ = 100."""
    import mmcv
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmengine.registry import init_default_scope
    from mmdet.registry import METRICS
    import mmwinwin  # noqa: F401
    init_default_scope('mmdet')

    ann_file = osp.join(SAMPLES, 'panoptic_examples.json')
    seg_prefix = osp.join(SAMPLES, 'panoptic_examples')
    data = json.load(open(ann_file))
    cats = data['categories']
    classes = [c['name'] for c in cats]
    meta = dict(classes=classes, thing_classes=[c['name'] for c in cats if c['isthing']],
                stuff_classes=[c['name'] for c in cats if not c['isthing']])
    label_of = {c['id']: i for i, c in enumerate(cats)}
    metric = METRICS.build(dict(type='mmwinwin.CocoPanopticMetric', ann_file=ann_file,
                                seg_prefix=seg_prefix))
    metric.dataset_meta = meta
    samples = []
    for ann in data['annotations']:
        ids = rgb_to_id(mmcv.imread(osp.join(seg_prefix, ann['file_name']), channel_order='rgb'))
        pan = np.full(ids.shape, len(classes), np.int64)  # void
        for k, s in enumerate(ann['segments_info']):
            pan[ids == s['id']] = label_of[s['category_id']] + (k + 1) * INSTANCE_OFFSET
        samples.append(dict(img_id=ann['image_id'],
                            pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None])))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res['coco_panoptic/PQ'] == pytest.approx(100.0)
    assert res['coco_panoptic/SQ'] == pytest.approx(100.0)
    assert res['coco_panoptic/PQ_th'] == pytest.approx(100.0)
    assert res['coco_panoptic/PQ_st'] == pytest.approx(100.0)
    # dropping one image's predictions: every of its segments becomes an FN
    metric.results.clear()
    samples[0]['pred_panoptic_seg']['sem_seg'][:] = len(classes)
    metric.process({}, samples)
    assert metric.evaluate(2)['coco_panoptic/RQ'] < 100.0


def test_registered_metric_with_dataset_ground_truth(tmp_path):
    """Without ann_file the metric reads mmdet's CocoPanopticDataset sample fields
    (segments_info with is_thing=False for crowd things, seg_map_path); with ann_file it
    reads the JSON. Both give 100 for predictions equal to the ground truth, and the same
    numbers for a degraded prediction."""
    import mmcv
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmdet.registry import DATASETS, METRICS
    from mmengine.registry import init_default_scope
    import mmwinwin  # noqa: F401
    from mmwinwin.datasets.synthetic import COCO_SYNTH_METAINFO, generate_coco
    init_default_scope('mmdet')
    root = str(tmp_path)
    generate_coco(root, num_train=1, num_val=2, img_size=(48, 64), seed=3)
    ds = DATASETS.build(dict(
        type='CocoPanopticDataset', data_root=root, ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        metainfo=COCO_SYNTH_METAINFO, test_mode=True, pipeline=[]))
    metrics = [METRICS.build(dict(type='mmwinwin.CocoPanopticMetric')),
               METRICS.build(dict(type='mmwinwin.CocoPanopticMetric',
                                  ann_file=osp.join(root, 'annotations/panoptic_val2017.json'),
                                  seg_prefix=osp.join(root, 'annotations/panoptic_val2017')))]
    for degrade in (False, True):
        results = []
        for metric in metrics:
            metric.dataset_meta = ds.metainfo
            samples = []
            for i in range(len(ds)):
                info = ds.get_data_info(i)
                ids = rgb_to_id(mmcv.imread(info['seg_map_path'], channel_order='rgb'))
                pan = np.full(ids.shape, 4, np.int64)  # void = number of classes
                for k, s in enumerate(info['segments_info']):
                    if s['category'] < 2 and not s['is_thing']:
                        continue  # crowd: left unassigned
                    pan[ids == s['id']] = s['category'] + (k + 1) * INSTANCE_OFFSET
                if degrade:
                    pan[: ids.shape[0] // 2] = 2  # top half predicted as sky (stuff)
                samples.append(dict(img_id=info['img_id'], seg_map_path=info['seg_map_path'],
                                    segments_info=info['segments_info'],
                                    pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None])))
            metric.process({}, samples)
            results.append(metric.evaluate(len(samples)))
        assert results[0] == results[1]
        if not degrade:
            assert results[0]['coco_panoptic/PQ'] == pytest.approx(100.0)
        else:
            assert results[0]['coco_panoptic/PQ'] < 100.0
