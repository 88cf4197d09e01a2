"""Panoptic quality (PQ = SQ x RQ) with the COCO panoptic conventions, in NumPy.

Written from the COCO panoptic evaluation's definition (Kirillov et al., CVPR 2019),
needing neither ``panopticapi`` (not on PyPI) nor mmcv:

* a predicted and a ground-truth segment of the same category match when their IoU
  is > 0.5; the union leaves out the prediction's pixels on void ground truth;
* ground-truth pixels whose id is not among the ground-truth segments are void;
  prediction pixels whose id is not among the predicted segments are unassigned;
* crowd ground-truth segments are never matched and never false negatives; an
  unmatched prediction is not a false positive when more than half of it lies on void
  plus the crowd region of its own category (one crowd region per category, the last
  listed, as in the COCO code);
* PQ per category = sum IoU / (TP + FP/2 + FN/2); SQ = sum IoU / TP; RQ = TP /
  (TP + FP/2 + FN/2); averages over the categories with TP + FP + FN > 0, for all
  categories, things and stuff.

Segment areas are pixel counts (the COCO JSON ``area`` equals them for valid data).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from ...fileio.panoptic import id_to_rgb, rgb_to_id  # noqa: F401  (re-exported)

__all__ = ['pq_image_stats', 'pq_summary', 'rgb_to_id', 'id_to_rgb', 'PQStats']

PQStats = dict  # category_id -> np.ndarray([tp, fp, fn, iou_sum], float64)


def _segments(segments: Iterable[Mapping], what: str) -> dict[int, Mapping]:
    out = {}
    for s in segments:
        if 'id' not in s or 'category_id' not in s:
            raise KeyError(f'Each {what} segment needs "id" and "category_id"; got {dict(s)}.')
        out[int(s['id'])] = s
    return out


def pq_image_stats(gt_ids: np.ndarray, gt_segments: Sequence[Mapping], pred_ids: np.ndarray,
                   pred_segments: Sequence[Mapping]) -> PQStats:
    """TP, FP, FN and IoU sum per category for one image.

    Args:
        gt_ids: (H, W) ground-truth segment ids.
        gt_segments: dicts with ``id``, ``category_id`` and optional ``iscrowd``.
        pred_ids: (H, W) predicted segment ids.
        pred_segments: dicts with ``id`` and ``category_id``.
    """
    gt_ids = np.asarray(gt_ids)
    pred_ids = np.asarray(pred_ids)
    if gt_ids.shape != pred_ids.shape or gt_ids.ndim != 2:
        raise ValueError(f'Ground truth {gt_ids.shape} and prediction {pred_ids.shape} must be '
                         'two (H, W) maps of the same size (resize predictions to the original '
                         'image size first).')
    gt_segs = _segments(gt_segments, 'ground-truth')
    pred_segs = _segments(pred_segments, 'predicted')

    # compact indices: 0 = void / unassigned, 1.. = listed segments
    gt_list, pred_list = list(gt_segs), list(pred_segs)
    g = _compact(gt_ids, gt_list)
    p = _compact(pred_ids, pred_list)
    n_p = len(pred_list) + 1
    inter = np.bincount((g * n_p + p).ravel(), minlength=(len(gt_list) + 1) * n_p)
    inter = inter.reshape(len(gt_list) + 1, n_p).astype(np.float64)
    gt_area = inter.sum(1)
    pred_area = inter.sum(0)

    stats: PQStats = {}

    def stat(cat):
        return stats.setdefault(int(cat), np.zeros(4, dtype=np.float64))

    gt_cat = [gt_segs[i]['category_id'] for i in gt_list]
    gt_crowd = [int(gt_segs[i].get('iscrowd', 0)) == 1 for i in gt_list]
    pred_cat = [pred_segs[i]['category_id'] for i in pred_list]
    gt_matched, pred_matched = set(), set()
    for gi, pi in zip(*np.nonzero(inter[1:, 1:])):
        if gt_crowd[gi] or gt_cat[gi] != pred_cat[pi]:
            continue
        i = inter[gi + 1, pi + 1]
        union = pred_area[pi + 1] + gt_area[gi + 1] - i - inter[0, pi + 1]
        iou = i / union
        if iou > 0.5:
            s = stat(gt_cat[gi])
            s[0] += 1
            s[3] += iou
            gt_matched.add(gi)
            pred_matched.add(pi)
    crowd_of_cat = {}
    for gi in range(len(gt_list)):
        if gi in gt_matched:
            continue
        if gt_crowd[gi]:
            crowd_of_cat[gt_cat[gi]] = gi
            continue
        stat(gt_cat[gi])[2] += 1
    for pi in range(len(pred_list)):
        if pi in pred_matched or pred_area[pi + 1] == 0:
            continue
        ignored = inter[0, pi + 1]
        if pred_cat[pi] in crowd_of_cat:
            ignored += inter[crowd_of_cat[pred_cat[pi]] + 1, pi + 1]
        if ignored / pred_area[pi + 1] > 0.5:
            continue
        stat(pred_cat[pi])[1] += 1
    return stats


def _compact(ids: np.ndarray, listed: list[int]) -> np.ndarray:
    """Map segment ids to 1..len(listed) and every other id to 0."""
    if not listed:
        return np.zeros(ids.shape, dtype=np.int64)
    order = np.argsort(listed)
    sorted_ids = np.asarray(listed, dtype=np.int64)[order]
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(listed) - 1)
    hit = sorted_ids[pos] == ids
    return np.where(hit, order[pos] + 1, 0).astype(np.int64)


def accumulate(total: PQStats, stats: PQStats) -> PQStats:
    """Add one image's stats into ``total`` (in place) and return it."""
    for cat, s in stats.items():
        total[cat] = total.get(cat, np.zeros(4)) + s
    return total


def pq_summary(stats: PQStats, categories: Mapping[int, bool]) -> dict[str, dict]:
    """PQ / SQ / RQ averaged over ``All``, ``Things`` and ``Stuff`` categories.

    Args:
        stats: per-category ``[tp, fp, fn, iou_sum]`` summed over images.
        categories: category id -> is-thing, for every category of the dataset.

    Returns:
        ``{'All' | 'Things' | 'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class': {cat: {...}}}``;
        an average over no category is 0 with ``n = 0``.
    """
    unknown = set(stats) - set(categories)
    if unknown:
        raise KeyError(f'Category ids {sorted(unknown)} are not among the dataset categories '
                       f'{sorted(categories)}.')
    per_class = {}
    for cat in categories:
        tp, fp, fn, iou = stats.get(cat, np.zeros(4))
        if tp + fp + fn == 0:
            continue
        denom = tp + 0.5 * fp + 0.5 * fn
        per_class[cat] = dict(pq=iou / denom, sq=iou / tp if tp else 0.0, rq=tp / denom)
    out: dict[str, dict] = {}
    for name, keep in (('All', lambda t: True), ('Things', bool), ('Stuff', lambda t: not t)):
        cats = [c for c in per_class if keep(categories[c])]
        n = len(cats)
        out[name] = {k: (float(np.mean([per_class[c][k] for c in cats])) if n else 0.0)
                     for k in ('pq', 'sq', 'rq')}
        out[name]['n'] = n
    out['per_class'] = per_class
    return out
