"""``CocoPanopticMetric``: COCO panoptic PQ / SQ / RQ without ``panopticapi``.

Consumes mmdet's panoptic predictions (``pred_panoptic_seg.sem_seg`` holding
``label + instance * INSTANCE_OFFSET``, void = ``len(classes)``) and the ground truth of
``CocoPanopticDataset`` (panoptic JSON + PNG folder, or the ``segments_info`` /
``seg_map_path`` the dataset puts in each sample). The math is
:mod:`mmwinwin.evaluation.functional.panoptic_quality`.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Sequence

import mmcv
import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...fileio.panoptic import rgb_to_id
from ...registry import register
from ..functional.panoptic_quality import accumulate, pq_image_stats, pq_summary


@register('METRICS', hosts=False)  # mmdet has the name: configs say mmwinwin.CocoPanopticMetric
class CocoPanopticMetric(BaseMetric):
    """Panoptic quality with the COCO conventions, for mmdet panoptic models.

    Args:
        ann_file: COCO panoptic JSON (``images``, ``annotations``, ``categories``).
            Without it the ground truth comes from each sample's ``segments_info`` and
            ``seg_map_path`` (add them to ``PackDetInputs``' ``meta_keys``).
        seg_prefix: folder of the ground-truth panoptic PNGs (with ``ann_file``).
        classwise: also log PQ / SQ / RQ per class.
    """
    default_prefix = 'coco_panoptic'

    def __init__(self, ann_file: str | None = None, seg_prefix: str | None = None,
                 classwise: bool = False, collect_device: str = 'cpu',
                 prefix: str | None = None, **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        unknown = set(kwargs) - {'outfile_prefix', 'format_only', 'nproc', 'backend_args'}
        if unknown:
            raise KeyError(f'Unknown arguments {sorted(unknown)} for CocoPanopticMetric.')
        if kwargs.get('format_only'):
            raise ValueError('CocoPanopticMetric computes PQ; format_only is not supported.')
        self.classwise = classwise
        self.seg_prefix = seg_prefix
        self._gt = None
        self._categories = None
        if ann_file is not None:
            if seg_prefix is None:
                raise ValueError('Pass seg_prefix (the folder of ground-truth panoptic PNGs) '
                                 'together with ann_file.')
            with open(ann_file) as f:
                data = json.load(f)
            for key in ('annotations', 'categories'):
                if key not in data:
                    raise KeyError(f'{ann_file} has no "{key}": not a COCO panoptic JSON.')
            self._gt = {a['image_id']: a for a in data['annotations']}
            self._categories = {c['id']: c for c in data['categories']}

    # ------------------------------------------------------------------ mapping
    def _label2cat(self) -> tuple[dict[int, int], dict[int, bool]]:
        classes = list(self.dataset_meta['classes'])
        things = set(self.dataset_meta.get('thing_classes', classes))
        if self._categories is None:
            return ({i: i for i in range(len(classes))},
                    {i: name in things for i, name in enumerate(classes)})
        by_name = {c['name']: c['id'] for c in self._categories.values()}
        missing = [n for n in classes if n not in by_name]
        if missing:
            raise KeyError(f'Classes {missing} of the dataset are not in the annotation file '
                           f'categories {sorted(by_name)}.')
        return ({i: by_name[n] for i, n in enumerate(classes)},
                {c['id']: bool(c.get('isthing', 1)) for c in self._categories.values()})

    def _ground_truth(self, sample: dict) -> tuple[np.ndarray, list[dict]]:
        if self._gt is not None:
            ann = self._gt.get(sample['img_id'])
            if ann is None:
                raise KeyError(f'Image id {sample["img_id"]} has no panoptic annotation in '
                               'ann_file.')
            path = osp.join(self.seg_prefix, ann['file_name'])
            segments = ann['segments_info']
        else:
            if 'segments_info' not in sample or 'seg_map_path' not in sample:
                raise KeyError('Without ann_file the samples need "segments_info" and '
                               '"seg_map_path": add them to PackDetInputs meta_keys or set '
                               'ann_file and seg_prefix.')
            path = sample['seg_map_path']
            label2cat, _ = self._label2cat()
            # mmdet's dataset marks crowd thing segments with is_thing=False
            classes = self.dataset_meta['classes']
            things = set(self.dataset_meta.get('thing_classes', classes))
            segments = [dict(id=s['id'], category_id=label2cat[s['category']],
                             iscrowd=int(classes[s['category']] in things and not s['is_thing']))
                        for s in sample['segments_info']]
        if not osp.isfile(path):
            raise FileNotFoundError(f'Ground-truth panoptic PNG {path} not found; check seg_prefix.')
        png = mmcv.imread(path, flag='color', channel_order='rgb')
        return rgb_to_id(png), segments

    # -------------------------------------------------------------- evaluation
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        label2cat, _ = self._label2cat()
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_panoptic_seg']
            pan = pred['sem_seg']
            pan = (pan.cpu().numpy() if hasattr(pan, 'cpu') else np.asarray(pan))[0]
            ignore = pred.get('ignore_index', num_classes)
            segments = []
            for v in np.unique(pan):
                sem = int(v) % INSTANCE_OFFSET
                if sem in (num_classes, ignore):
                    continue
                segments.append(dict(id=int(v), category_id=label2cat[sem]))
            gt_ids, gt_segments = self._ground_truth(sample)
            if gt_ids.shape != pan.shape:
                raise ValueError(f'Prediction of size {pan.shape} for image {sample["img_id"]} '
                                 f'but its ground truth is {gt_ids.shape}.')
            self.results.append(pq_image_stats(gt_ids, gt_segments, pan, segments))

    def compute_metrics(self, results: list) -> dict[str, float]:
        _, isthing = self._label2cat()
        total: dict = {}
        for stats in results:
            accumulate(total, stats)
        summary = pq_summary(total, isthing)
        out = {}
        for name, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
            for k in ('pq', 'sq', 'rq'):
                out[k.upper() + suffix] = round(100 * summary[name][k], 3)
        lines = [f'{"":8s}{"PQ":>8s}{"SQ":>8s}{"RQ":>8s}{"N":>6s}']
        for name in ('All', 'Things', 'Stuff'):
            s = summary[name]
            lines.append(f'{name:8s}{100 * s["pq"]:8.2f}{100 * s["sq"]:8.2f}'
                         f'{100 * s["rq"]:8.2f}{s["n"]:6d}')
        if self.classwise:
            cat2name = {c: n for c, n in zip(self._label2cat()[0].values(),
                                             self.dataset_meta['classes'])}
            for c, s in summary['per_class'].items():
                lines.append(f'{cat2name.get(c, c)!s:8s}{100 * s["pq"]:8.2f}'
                             f'{100 * s["sq"]:8.2f}{100 * s["rq"]:8.2f}')
        print_log('Panoptic evaluation:\n' + '\n'.join(lines), logger='current')
        return out
