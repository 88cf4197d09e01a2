"""Optical-flow metric on valid pixels: EPE, 1/3/5 px outliers, KITTI Fl-all.

Conventions (all computed only where the ground truth is valid -- Sintel ``invalid``
masks, KITTI's sparse valid channel, Spring's NaNs are excluded):

* ``EPE``: mean end-point error (px). ``average='pixel'`` pools all valid pixels of the
  dataset (Sintel, Spring); ``average='image'`` averages per-image means (KITTI's usual
  EPE).
* ``1px`` / ``3px`` / ``5px``: % of valid pixels with EPE above 1 / 3 / 5 px, pooled.
  ``1px`` is Spring's ranking metric.
* ``Fl-all``: KITTI 2015, % of valid pixels with EPE > 3 px **and** > 5 % of |GT|, pooled.
* with occlusion masks (Sintel): ``EPE-noc`` / ``EPE-occ`` on non-occluded / occluded
  valid pixels (Sintel's "matched" / "unmatched").

``convention='spring'`` follows the Spring benchmark instead: the 2x super-resolved ground
truth (``LoadFlowPair(keep_subpixel_gt=True)``) gives four sub-pixels per estimated pixel
and each pixel keeps the smallest of its four errors; ``EPE``, ``1px`` (the ranking
metric), ``Fl`` (> 3 px and > 5 % of the largest sub-pixel magnitude) and ``WAUC`` are
pooled over all pixels whose four sub-pixels have ground truth, plus ``EPE`` / ``1px``
per speed band ``s0-10`` / ``s10-40`` / ``s40+`` (mean sub-pixel magnitude, px).

``output_dir`` writes every estimated flow in its benchmark's submission format and
layout (the dataset's ``out_name``: Sintel ``clean/SCENE/frame_XXXX.flo``, Spring
``SCENE/flow_FW_left/flow_FW_left_XXXX.flo5``, KITTI ``flow/XXXXXX_10.png``), ready for the
benchmark's own packing tool; ``format_only=True`` only writes them (test splits have no
ground truth).
"""
from __future__ import annotations

from collections.abc import Sequence

import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...layers.flow.ops import SPRING_SPEED_BANDS, flow_error_stats, spring_error_stats, spring_wauc
from ...registry import register

__all__ = ['FlowMetric']


@register('METRICS')
class FlowMetric(BaseMetric):
    """Args:
        average: ``'pixel'`` (pooled EPE) or ``'image'`` (mean of per-image EPE).
        convention: ``'standard'`` (Sintel / KITTI / FlyingChairs) or ``'spring'``
            (four ground-truth sub-pixels per pixel, see the module docstring; pooled per
            pixel).
        output_dir: write each estimated flow to ``output_dir/<out_name>`` (submission
            formats, see the module docstring).
        format_only: only write the flows (needs ``output_dir``); no metric is computed.
        prefix: metric name prefix (default ``'flow'``).
    """

    default_prefix = 'flow'

    def __init__(self, average: str = 'pixel', convention: str = 'standard',
                 output_dir: str | None = None, format_only: bool = False,
                 collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if average not in ('pixel', 'image'):
            raise ValueError(f"average must be 'pixel' or 'image', got {average!r}.")
        if convention not in ('standard', 'spring'):
            raise ValueError(f"convention must be 'standard' or 'spring', got {convention!r}.")
        if convention == 'spring' and average != 'pixel':
            raise ValueError("Spring pools all pixels of the split: use average='pixel' with "
                             "convention='spring'.")
        if format_only and not output_dir:
            raise ValueError('FlowMetric(format_only=True) needs output_dir, the folder the '
                             'submission files are written to.')
        self.average = average
        self.convention = convention
        self.output_dir = output_dir
        self.format_only = format_only

    def _write(self, data_samples: Sequence[dict]) -> None:
        from ...fileio.flow import write_flow  # data I/O stays out of the metric's import
        for s in data_samples:
            name = s.get('out_name')
            if not name:
                raise KeyError('FlowMetric(output_dir=...) needs out_name in the data samples '
                               '(the flow datasets set it; keep PackFlowInputs meta keys).')
            flow = s['pred_flow'].float().cpu().numpy().transpose(1, 2, 0)
            write_flow(osp.join(self.output_dir, name), flow)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        if self.output_dir:
            self._write(data_samples)
        if self.format_only:
            self.results.extend({} for _ in data_samples)
            return
        if self.convention == 'spring':
            return self._process_spring(data_samples)
        for s in data_samples:
            if 'gt_flow' not in s:
                raise KeyError('FlowMetric needs ground truth (gt_flow) in the data samples; '
                               'the test split has none -- use a split with flow files.')
            pred = s['pred_flow'].float().cpu()[None]
            gt = s['gt_flow'].float().cpu()[None]
            if pred.shape != gt.shape:
                raise ValueError(f'pred_flow {tuple(pred.shape)} and gt_flow {tuple(gt.shape)} '
                                 f'differ in size ({s.get("img1_path", "")}).')
            valid = s['gt_valid'].bool().cpu()[None]
            st = {k: float(v) for k, v in flow_error_stats(pred, gt, valid).items()}
            if 'gt_occ' in s:
                occ = s['gt_occ'].bool().cpu()[None]
                for tag, m in (('noc', valid & ~occ), ('occ', valid & occ)):
                    sub = flow_error_stats(pred, gt, m)
                    st[f'count_{tag}'] = float(sub['count'])
                    st[f'epe_{tag}'] = float(sub['epe'])
            self.results.append(st)

    def _process_spring(self, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if 'gt_flow_subpixels' not in s:
                raise KeyError("FlowMetric(convention='spring') needs the 2x ground truth: "
                               "load it with LoadFlowPair(keep_subpixel_gt=True) in the test "
                               "pipeline (Spring .flo5 files are 2x the frame size).")
            pred = s['pred_flow'].float().cpu()
            gt_sub = s['gt_flow_subpixels'].float().cpu()
            if pred.shape != gt_sub.shape[1:]:
                raise ValueError(f'pred_flow {tuple(pred.shape)} is not on the grid of the '
                                 f'ground-truth sub-pixels {tuple(gt_sub.shape)} '
                                 f'({s.get("img1_path", "")}).')
            st = spring_error_stats(pred, gt_sub)
            hits = st.pop('wauc_hits')
            out = {k: float(v) for k, v in st.items()}
            out['wauc_hits'] = hits.tolist()
            self.results.append(out)

    def _compute_spring(self, results: list[dict], n: float) -> dict[str, float]:
        total = lambda k: sum(r[k] for r in results)  # noqa: E731
        hits = torch.tensor([r['wauc_hits'] for r in results], dtype=torch.float64).sum(0)
        out = {'EPE': total('epe') / n, '1px': 100.0 * total('out1px') / n,
               'Fl': 100.0 * total('fl') / n, 'WAUC': spring_wauc(hits, n)}
        for band in SPRING_SPEED_BANDS:
            c = total(f'count_{band}')
            if c > 0:
                out[f'EPE-{band}'] = total(f'epe_{band}') / c
                out[f'1px-{band}'] = 100.0 * total(f'out1px_{band}') / c
        return {k: round(float(v), 4) for k, v in out.items()}

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        if self.format_only:
            if is_main_process():
                print_log(f'FlowMetric: {len(results)} flows written to {self.output_dir} '
                          f'(format_only, no metric).', logger='current')
            return {}
        n = sum(r['count'] for r in results)
        if n == 0:
            raise ValueError('FlowMetric found no valid ground-truth pixel in the whole split.')
        if self.convention == 'spring':
            return self._compute_spring(results, n)
        pct = lambda k: 100.0 * sum(r[k] for r in results) / n  # noqa: E731
        if self.average == 'pixel':
            epe = sum(r['epe'] for r in results) / n
        else:
            per = [r['epe'] / r['count'] for r in results if r['count'] > 0]
            epe = sum(per) / len(per)
        out = {'EPE': epe, '1px': pct('out1px'), '3px': pct('out3px'), '5px': pct('out5px'),
               'Fl-all': pct('fl')}
        for tag in ('noc', 'occ'):
            c = sum(r.get(f'count_{tag}', 0.0) for r in results)
            if c > 0:
                out[f'EPE-{tag}'] = sum(r.get(f'epe_{tag}', 0.0) for r in results) / c
        return {k: round(float(v), 4) for k, v in out.items()}
