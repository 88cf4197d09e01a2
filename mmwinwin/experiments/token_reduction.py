"""Expedite against ToMe-style token merging and token pooling, on the same trained weights.

    python -m mmwinwin.experiments.token_reduction --work-dir work_dirs/token_reduction
    python -m mmwinwin.experiments.token_reduction --report-only      # tables + plots from data

Trains once (cached in ``--work-dir``, resumable: mmengine resumes from the latest checkpoint
of an interrupted run; a finished checkpoint is reused and not retrained) two small plain models
on data generated here with the project's generators, then sweeps every method's knob on those
same weights (whole-image test on the generated test split):

* ``segmentor``: ``configs/expedite/experiments/fcn_rope-vit-6l-64d-p8_1xb4-300i_synthetic-ade20k-256x256.py``
  (``ExpeditedRoPEViT`` with ``expedite=None``, FCN head; 256x256 images at patch 8 = 1024
  tokens; ``generate_ade20k(num_scenes=1)``: background, disc, square; metric mIoU);
* ``detector``: ``configs/expedite_det/experiments/mask-rcnn_rope-vit-6l-64d-p8-win8_900i_coco-synth-256x256.py``
  (``ExpeditedRoPEViTDet`` plain, 8x8-token windows, SimpleFPN, Mask R-CNN; 256x256 generated
  COCO images (``generate_coco``, task ``shapes``) at patch 8 = 1024 tokens; metric box AP of
  mmdet's ``CocoMetric``).

Methods, all at the same ``--alpha`` (default: half the depth), each a backbone option:

* ``unreduced``: the plain model;
* ``expedite``: ``expedite=dict(alpha, cluster_grid=(h, w), temperature=t)`` (official
  operators; the detector: ``num_clusters`` per attention window, ``window=3, k=3`` as
  ``configs/expedite_det/experiments``), knob: the cluster grid / clusters per window. ``t``
  must match a model's feature scale (docs/expedite.md); ``--temperature auto`` (default)
  calibrates it once per model without labels on ``--calib-images`` TRAINING images: of
  ``--calib-temperatures``, the one whose middle Expedite setting agrees best with the
  unreduced model (the agreement below); a number fixes it;
* ``tome``: ``token_merging=dict(alpha, r=R)`` (ToMe-style merging, unmerged at the end), knob R;
* ``pool``: ``token_pooling=dict(alpha, stride=S)`` (average pooling at alpha, bilinear
  upsampling at the end), knob S.

A method whose option the backbone does not have, or whose setting the backbone rejects, is
skipped with the reason, printed and stored.

Per setting: the task metric; the agreement with the unreduced model (segmentation: share of
test pixels with the same predicted class; detection: COCO box AP@[.5:.95] of the reduced
model's detections scored against the unreduced model's detections with score >=
``--det-score-thr`` taken as ground truth, all categories, the unreduced model scores 100); the
MACs of one test forward (``model.test_step`` on the first test image, backbone + head +
post-processing, :func:`mmwinwin.utils.benchmark.count_macs`); the CPU latency of that test
forward at each of ``--threads`` (every setting's model built once, ``--warmup`` untimed calls
each, then ``--rounds`` rounds, one call of every setting per round, interleaved; median; ratios
to the unreduced model of the same run); the peak memory of that forward (``--memory
subprocess``: a fresh process per setting at 1 thread, glibc's mmap threshold pinned to 128 KiB
so the RSS follows the live tensors, one warm-up forward, then the peak RSS (VmHWM, reset)
minus the RSS before the measured forward, i.e. the forward's activations and temporaries;
``inprocess``: the same in this process, for quick runs).

Writes ``--data`` (every point, machine and settings), ``--tables`` (markdown, one table per
model, and the Pareto statements) and PNGs under ``--images`` (accuracy vs GMACs, accuracy vs
latency). :func:`tables`, :func:`plots` and :func:`pareto_check` work on the data alone.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from . import REPO_ROOT

SEG_CONFIG = osp.join(REPO_ROOT, 'configs', 'expedite', 'experiments',
                      'fcn_rope-vit-6l-64d-p8_1xb4-300i_synthetic-ade20k-256x256.py')
DET_CONFIG = osp.join(REPO_ROOT, 'configs', 'expedite_det', 'experiments',
                      'mask-rcnn_rope-vit-6l-64d-p8-win8_900i_coco-synth-256x256.py')
MODEL_NAMES = ('segmentor', 'detector')
METHODS = ('unreduced', 'expedite', 'tome', 'pool')
#: backbone option of each reducing method
OPTION = {'expedite': 'expedite', 'tome': 'token_merging', 'pool': 'token_pooling'}
LABELS = {'unreduced': 'unreduced', 'expedite': 'Expedite (clustering)',
          'tome': 'ToMe-style merging', 'pool': 'avg pooling + bilinear'}
KNOB = {'unreduced': '-', 'expedite': 'cluster grid', 'tome': 'r', 'pool': 'stride'}
AXES = {'gmacs': 'GMACs of one test forward',
        'feature_gmacs': 'GMACs of feature extraction (backbone, detector neck)',
        'latency_1t_ms': 'latency, 1 thread (ms)',
        'latency_2t_ms': 'latency, 2 threads (ms)'}
DET_AGREEMENT_RULE = ('COCO box AP@[.5:.95] (percent) of the reduced model\'s detections scored '
                      'against the unreduced model\'s detections with score >= {thr} as ground '
                      'truth (all categories; the unreduced model scores 100)')
SEG_AGREEMENT_RULE = ('share of test pixels (percent) whose predicted class equals the unreduced '
                      'model\'s')
MEMORY_RULE = {
    'subprocess': 'peak RSS growth (MiB) of one test forward in a fresh process per setting at 1 '
                  'thread: glibc mmap threshold pinned at 128 KiB, one warm-up forward, then '
                  'VmHWM (reset) minus the RSS before the forward',
    'inprocess': 'peak RSS growth (MiB) of one test forward in the sweep process (glibc mmap '
                 'threshold pinned at 128 KiB, VmHWM reset before the forward)'}


# ------------------------------------------------------------------------------- arguments
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work-dir', default='work_dirs/token_reduction',
                   help='data, checkpoints (reused when present) and logs')
    p.add_argument('--data', default=osp.join('docs', 'data', 'token_reduction.json'))
    p.add_argument('--tables', default=None,
                   help='also write the tables to this markdown file (the docs get them from '
                        '--data through python -m mmwinwin.experiments.report)')
    p.add_argument('--images', default=osp.join('docs', 'images', 'token_reduction'))
    p.add_argument('--report-only', action='store_true',
                   help='regenerate tables and plots from --data; run nothing')
    p.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
    p.add_argument('--methods', nargs='+', default=list(METHODS[1:]), choices=METHODS[1:])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-size', type=int, default=256, help='square images (both models)')
    p.add_argument('--iters', type=int, default=None,
                   help='training iterations of the segmentor (default: its config\'s, 300)')
    p.add_argument('--det-iters', type=int, default=None,
                   help='training iterations of the detector (default: its config\'s, 900)')
    p.add_argument('--num-train', type=int, default=240)
    p.add_argument('--num-val', type=int, default=24)
    p.add_argument('--alpha', type=int, default=None,
                   help='blocks before the reduction, the same for all methods (default: '
                        'half the depth)')
    p.add_argument('--grids', nargs='+', default=['24x24', '16x16', '12x12', '8x8'],
                   help='Expedite cluster grids of the segmentor')
    p.add_argument('--det-clusters', nargs='+', type=int, default=[36, 16, 9, 4],
                   help='Expedite clusters per attention window of the detector')
    p.add_argument('--temperature', default='auto',
                   help="Expedite's t: a number, or auto (calibrated on training images)")
    p.add_argument('--calib-temperatures', nargs='+', type=float, default=[1.0, 3.0, 10.0, 30.0])
    p.add_argument('--calib-images', type=int, default=16)
    p.add_argument('--tome-r', nargs='+', type=int, default=[64, 128, 192, 256],
                   help='token_merging r of the segmentor (tokens merged before each block '
                        'after alpha)')
    p.add_argument('--det-tome-r', nargs='+', type=int, default=[4, 8, 12, 16],
                   help='token_merging r of the detector')
    p.add_argument('--strides', nargs='+', type=int, default=[2, 3, 4],
                   help='token_pooling strides of the segmentor')
    p.add_argument('--det-strides', nargs='+', type=int, default=[2, 4],
                   help='token_pooling strides of the detector (dividing its 8-token windows)')
    p.add_argument('--det-score-thr', type=float, default=0.3,
                   help='unreduced detections at or above this score are the agreement truth '
                        '(0.3: the tiny detector scores at most 0.47; 142 boxes for the 80 '
                        'objects of the 24 test images)')
    p.add_argument('--threads', nargs='+', type=int, default=[1, 2])
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--memory', default='subprocess', choices=['subprocess', 'inprocess'])
    p.add_argument('--toy', action='store_true',
                   help='seconds-scale run for tests: 64x64 images, 2 iterations, 4+2 images, '
                        'one setting per method, 1 round, in-process memory')
    p.add_argument('--train-only', action='store_true',
                   help='generate the data and train (or reuse) the models; no sweep')
    p.add_argument('--memory-probe', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.toy:
        args.img_size, args.iters, args.det_iters, args.num_train, args.num_val = 64, 2, 2, 4, 2
        args.grids, args.det_clusters, args.tome_r, args.det_tome_r = ['4x4'], [4], [16], [4]
        args.strides, args.det_strides = [2], [2]
        args.rounds, args.warmup, args.memory = 1, 1, 'inprocess'
        args.calib_images, args.calib_temperatures = 2, [1.0, 10.0]
    return args


# -------------------------------------------------------------------------- configs, data
def _schedule(cfg, iters: int, seg: bool) -> None:
    warm = max(1, iters // 10)
    if seg:
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warm),
            dict(type='PolyLR', power=1.0, begin=warm, end=iters, eta_min=0.0, by_epoch=False)]
    else:
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warm),
            dict(type='CosineAnnealingLR', T_max=max(1, iters - warm), eta_min=1e-5,
                 by_epoch=False, begin=warm, end=iters)]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.default_hooks.logger.interval = max(1, iters // 6)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=max(1, iters // 3), max_keep_ckpts=1)


def build_cfg(name: str, args, data_root: str, work_dir: str):
    """The mmengine Config of one model: its config file with the generated data, the image
    size, the schedule and the seed of the arguments."""
    from mmengine.config import Config
    cfg = Config.fromfile(SEG_CONFIG if name == 'segmentor' else DET_CONFIG)
    for var in ('img_size', 'embed_dims', 'num_layers', 'iters', 'classes', 'data_root',
                'train_pipeline', 'test_pipeline', 'dataset', 'image_size', 'max_iters',
                'metainfo', 'ch', 'pretrained', 'batch_augments'):
        cfg.pop(var, None)
    size = (args.img_size, args.img_size)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=args.seed)
    iters = (args.iters if name == 'segmentor' else args.det_iters) or cfg.train_cfg.max_iters
    if name == 'segmentor':
        cfg.model.data_preprocessor.size = size
        cfg.model.backbone.img_size = size
        for loader in (cfg.train_dataloader, cfg.test_dataloader):
            loader.dataset.data_root = data_root
        _schedule(cfg, iters, seg=True)
    else:
        root = data_root.rstrip('/') + '/'
        cfg.model.data_preprocessor.batch_augments = [
            dict(type='BatchFixedSizePad', size=size, pad_mask=True)]
        for loader in (cfg.train_dataloader, cfg.test_dataloader, cfg.val_dataloader):
            loader.dataset.data_root = root
            for t in loader.dataset.pipeline:
                if t['type'] in ('Resize', 'RandomResize'):
                    t['scale'] = size
                if t['type'] == 'RandomCrop':
                    t['crop_size'] = size
        for ev in (cfg.test_evaluator, cfg.val_evaluator):
            ev.ann_file = root + 'annotations/instances_val2017.json'
        _schedule(cfg, iters, seg=False)
    return cfg


def generate_data(name: str, args, root: str) -> str:
    """The generated data of a model (written once; a ``.done`` marker records completion)."""
    done = osp.join(root, '.done')
    if osp.exists(done):
        return root
    size = (args.img_size, args.img_size)
    if name == 'segmentor':
        from mmwinwin.datasets.synthetic import generate_ade20k
        generate_ade20k(root, args.num_train, args.num_val, size, num_scenes=1, seed=args.seed)
    else:
        from mmwinwin.datasets.synthetic import generate_coco
        generate_coco(root, num_train=args.num_train, num_val=args.num_val, img_size=size,
                      crowd=False, seed=args.seed)
    with open(done, 'w') as f:
        f.write('ok\n')
    return root


def train(cfg) -> dict:
    """Train with mmengine's Runner unless the final checkpoint exists (resuming from the
    latest checkpoint of an interrupted run); returns the checkpoint and the training time."""
    from mmengine.runner import Runner
    iters = cfg.train_cfg.max_iters
    ckpt = osp.join(cfg.work_dir, f'iter_{iters}.pth')
    info_file = osp.join(cfg.work_dir, 'train_info.json')
    if osp.exists(ckpt) and osp.exists(info_file):
        with open(info_file) as f:
            return dict(json.load(f), cached=True)
    cfg.resume = True  # the latest checkpoint in work_dir, if any
    t0 = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    info = dict(checkpoint=ckpt, iters=iters, train_wall_s=round(time.perf_counter() - t0, 1),
                threads=_torch().get_num_threads())
    with open(info_file, 'w') as f:
        json.dump(info, f, indent=1)
    return dict(info, cached=False)


def _torch():
    import torch
    return torch


# ------------------------------------------------------------------------------- settings
def settings(name: str, args, num_layers: int, temperature: float = 1.0) -> list[dict]:
    """``[{method, knob, option}]``: the unreduced model, then every method's knob values
    (``option``: the backbone keyword and its dict, ``None`` for the plain model)."""
    alpha = args.alpha if args.alpha is not None else num_layers // 2
    out = [dict(method='unreduced', knob='-', option=None)]
    if 'expedite' in args.methods:
        if name == 'segmentor':
            for g in args.grids:
                h, w = (int(v) for v in g.lower().split('x'))
                out.append(dict(method='expedite', knob=f'{h}x{w}', option=dict(
                    expedite=dict(alpha=alpha, cluster_grid=(h, w), k=min(20, h * w),
                                  temperature=temperature))))
        else:
            for n in args.det_clusters:
                out.append(dict(method='expedite', knob=f'{n}/window', option=dict(
                    expedite=dict(alpha=alpha, num_clusters=n, temperature=temperature,
                                  window=3, k=3))))
    if 'tome' in args.methods:
        for r in (args.tome_r if name == 'segmentor' else args.det_tome_r):
            out.append(dict(method='tome', knob=str(r),
                            option=dict(token_merging=dict(alpha=alpha, r=r))))
    if 'pool' in args.methods:
        for s in (args.strides if name == 'segmentor' else args.det_strides):
            out.append(dict(method='pool', knob=str(s),
                            option=dict(token_pooling=dict(alpha=alpha, stride=s))))
    return out


class Skipped(Exception):
    """A setting the backbone does not support (the reason is the message)."""


def _registry(cfg):
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    importlib.import_module("mmwinwin")  # registers the models
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS


def build_model(cfg, checkpoint: str, option: dict | None):
    """The model of ``cfg`` with the backbone option ``option`` (``{keyword: dict}``), the
    checkpoint loaded strictly, in eval mode; :class:`Skipped` when the backbone lacks the
    keyword or rejects the setting."""
    from mmwinwin.utils import load_checkpoint_strict
    MODELS = _registry(cfg)
    mcfg = copy.deepcopy(cfg.model)
    if option:
        cls = MODELS.get(mcfg.backbone.type)
        params = inspect.signature(cls.__init__).parameters
        for key in option:
            if key not in params:
                raise Skipped(f'{cls.__name__} has no {key!r} option: give one of its '
                              f'token policies (expedite, token_merging, token_pooling)')
        mcfg.backbone.update(copy.deepcopy(option))
    try:
        model = MODELS.build(mcfg)
    except (ValueError, TypeError, KeyError, AssertionError) as e:
        if not option:
            raise
        raise Skipped(f'the backbone rejects {option}: {type(e).__name__}: {e}') from e
    load_checkpoint_strict(model, checkpoint)
    return model.eval()


def test_batches(cfg) -> tuple[list, object]:
    from mmengine.runner import Runner
    _registry(cfg)
    loader = Runner.build_dataloader(copy.deepcopy(cfg.test_dataloader), seed=0)
    return list(loader), loader.dataset


def calibration_batches(cfg, name: str, count: int) -> list:
    """The first ``count`` TRAINING images through the test pipeline."""
    c = copy.deepcopy(cfg)
    ds = c.test_dataloader.dataset
    if name == 'segmentor':
        ds.data_prefix = dict(img_path='images/training', seg_map_path='annotations/training')
    else:
        ds.ann_file = 'annotations/instances_train2017.json'
        ds.data_prefix = dict(img='train2017/')
    ds.indices = count
    return test_batches(c)[0]


def calibrate_temperature(cfg, name: str, checkpoint: str, args, alpha: int) -> dict:
    """Expedite's temperature for this model, without labels: on ``args.calib_images``
    training images, the one of ``args.calib_temperatures`` whose middle Expedite setting
    agrees best with the unreduced model's predictions (first on ties)."""
    num_layers = cfg.model.backbone.arch['num_layers']
    if args.temperature != 'auto':
        return dict(temperature=float(args.temperature), rule='given')
    exp = [s for s in settings(name, args, num_layers) if s['method'] == 'expedite']
    if not exp:
        return dict(temperature=1.0, rule='no Expedite setting: unused')
    mid = exp[len(exp) // 2]
    batches = calibration_batches(cfg, name, args.calib_images)
    seg = name == 'segmentor'

    def preds(model):
        out = predict(model, batches)
        return seg_maps(out) if seg else det_boxes(out)

    ref = preds(build_model(cfg, checkpoint, None))
    scores = {}
    for t in args.calib_temperatures:
        option = copy.deepcopy(mid['option'])
        option['expedite']['temperature'] = t
        p = preds(build_model(cfg, checkpoint, option))
        scores[t] = seg_agreement(ref, p) if seg else det_agreement(ref, p, args.det_score_thr)
    best = max(scores, key=lambda t: (scores[t] == scores[t], scores[t]))
    return dict(temperature=best, rule=f'agreement of Expedite {mid["knob"]} with the unreduced '
                f'model on {len(batches)} training images, best of {list(scores)}',
                agreement={str(k): v for k, v in scores.items()})


# ------------------------------------------------------------------------------ measuring
def predict(model, batches) -> list:
    torch = _torch()
    with torch.no_grad():
        return [model.test_step(b) for b in batches]


def evaluate(cfg, dataset, batches, outputs) -> dict:
    from mmengine.evaluator import Evaluator
    _registry(cfg)
    ev = Evaluator(copy.deepcopy(cfg.test_evaluator))
    ev.dataset_meta = dataset.metainfo
    for b, out in zip(batches, outputs):
        ev.process(data_samples=out, data_batch=b)
    return ev.evaluate(len(dataset))


def seg_maps(outputs) -> list:
    return [s.pred_sem_seg.data.clone() for out in outputs for s in out]


def det_boxes(outputs) -> list[dict]:
    res = []
    for out in outputs:
        for s in out:
            p = s.pred_instances
            res.append(dict(bboxes=p.bboxes.detach().clone().numpy(),
                            scores=p.scores.detach().clone().numpy(),
                            labels=p.labels.detach().clone().numpy(),
                            shape=tuple(s.ori_shape)))
    return res


def seg_agreement(ref: list, maps: list) -> float:
    """Percent of pixels whose predicted class equals the reference's."""
    same = sum(int((a == b).sum()) for a, b in zip(ref, maps))
    total = sum(a.numel() for a in ref)
    return 100.0 * same / total


def det_agreement(ref: list[dict], dets: list[dict], score_thr: float) -> float:
    """COCO box AP@[.5:.95] (percent) of ``dets`` against the reference detections with score
    >= ``score_thr`` as ground truth (see :data:`DET_AGREEMENT_RULE`); NaN when the reference
    has no such detection."""
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    labels = sorted({int(v) for d in ref + dets for v in d['labels']}) or [0]
    images, anns, res = [], [], []
    for i, (r, d) in enumerate(zip(ref, dets)):
        images.append(dict(id=i, height=int(r['shape'][0]), width=int(r['shape'][1])))
        for b, s, c in zip(r['bboxes'], r['scores'], r['labels']):
            if s >= score_thr:
                box = xywh(b)
                anns.append(dict(id=len(anns) + 1, image_id=i, category_id=int(c) + 1,
                                 bbox=box, area=box[2] * box[3], iscrowd=0))
        for b, s, c in zip(d['bboxes'], d['scores'], d['labels']):
            res.append(dict(image_id=i, category_id=int(c) + 1, bbox=xywh(b), score=float(s)))
    if not anns:
        return float('nan')
    if not res:
        return 0.0
    gt = COCO()
    gt.dataset = dict(images=images, annotations=anns,
                      categories=[dict(id=c + 1, name=str(c)) for c in labels])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(res)
        e = COCOeval(gt, dt, 'bbox')
        e.evaluate()
        e.accumulate()
        e.summarize()
    ap = float(e.stats[0])
    return 100.0 * ap if ap >= 0 and not np.isnan(ap) else float('nan')


def forward_macs(model, batch) -> tuple[float, float]:
    """MACs of one test forward (``model.test_step``) and of its feature extraction alone
    (``model.extract_feat``: the backbone, and the detector's neck)."""
    from mmwinwin.utils.benchmark import count_macs
    torch = _torch()
    with torch.no_grad():
        macs, _ = count_macs(lambda: model.test_step(batch))
        inputs = model.data_preprocessor(batch, False)['inputs']
        feat_macs, _ = count_macs(lambda: model.extract_feat(inputs))
    return macs, feat_macs


def latencies(models: list, batch, threads: list[int], rounds: int, warmup: int) -> list[dict]:
    """Per model ``{threads: {median_ms, times_ms}}``: ``warmup`` untimed calls of every model,
    then ``rounds`` rounds timing one call of every model in turn (interleaved; round ``r``
    starts at model ``r`` mod the count)."""
    torch = _torch()
    before = torch.get_num_threads()
    out = [dict() for _ in models]
    try:
        for t in threads:
            torch.set_num_threads(t)
            times = [[] for _ in models]
            with torch.no_grad():
                for m in models:
                    for _ in range(warmup):
                        m.test_step(batch)
                for r in range(rounds):
                    # each round starts one setting later, so no setting always runs first
                    order = list(range(len(models)))
                    order = order[r % len(order):] + order[:r % len(order)]
                    for i in order:
                        m = models[i]
                        t0 = time.perf_counter()
                        m.test_step(batch)
                        times[i].append(1e3 * (time.perf_counter() - t0))
            for i in range(len(models)):
                out[i][str(t)] = dict(median_ms=statistics.median(times[i]),
                                      times_ms=[round(v, 3) for v in times[i]])
    finally:
        torch.set_num_threads(before)
    return out


def _peak_memory(model, batch) -> dict:
    from mmwinwin.utils.benchmark import PeakMemory, pin_malloc_threshold
    torch = _torch()
    pinned = pin_malloc_threshold()
    with torch.no_grad():
        model.test_step(batch)  # warm-up: one-time allocations
        with PeakMemory('cpu') as m:
            model.test_step(batch)
    return dict(peak_growth_mib=round(m.growth_mib, 2), peak_rss_mib=round(m.peak_mib, 2),
                method=m.method + ('' if pinned else ', mmap threshold not pinned'))


def memory_probe(spec_file: str) -> None:
    """The ``--memory-probe`` subprocess: one setting's peak memory, printed as JSON."""
    from mmengine.config import Config
    torch = _torch()
    torch.set_num_threads(1)
    with open(spec_file) as f:
        spec = json.load(f)
    cfg = Config.fromfile(spec['config'])
    batches, _ = test_batches(cfg)
    model = build_model(cfg, spec['checkpoint'], spec['option'])
    print('MEMORY ' + json.dumps(_peak_memory(model, batches[0])))


def memory_subprocess(cfg_file: str, checkpoint: str, option: dict | None) -> dict:
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump(dict(config=cfg_file, checkpoint=checkpoint, option=option), f)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
    try:
        r = subprocess.run([sys.executable, '-m', 'mmwinwin.experiments.token_reduction',
                            '--memory-probe', f.name], capture_output=True, text=True,
                           env=env, cwd=REPO_ROOT, timeout=600)
    finally:
        os.remove(f.name)
    line = [x for x in r.stdout.splitlines() if x.startswith('MEMORY ')]
    if r.returncode != 0 or not line:
        raise RuntimeError(f'memory probe failed ({r.returncode}): {r.stderr[-2000:]}')
    return json.loads(line[-1][len('MEMORY '):])


# ---------------------------------------------------------------------------------- sweep
def machine() -> dict:
    torch = _torch()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return dict(platform=platform.platform(), processor=platform.processor(),
                cpu_count=os.cpu_count(), usable_cpus=usable, torch=torch.__version__,
                python=platform.python_version(),
                load_average=[round(v, 2) for v in os.getloadavg()])


def _json(v):
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def run_model(name: str, args) -> dict:
    """Generate the data, train (or reuse) the model and sweep every setting."""
    torch = _torch()
    root = osp.abspath(args.work_dir)
    data_root = generate_data(name, args, osp.join(
        root, f'data_{name}_{args.img_size}px_{args.num_train}+{args.num_val}_seed{args.seed}'))
    cfg = build_cfg(name, args, data_root, root)
    # one folder per model, size, schedule and seed: a changed flag trains anew
    work = osp.join(root, f'{name}_{args.img_size}px_{cfg.train_cfg.max_iters}i_seed{args.seed}')
    os.makedirs(work, exist_ok=True)
    cfg.work_dir = work
    cfg_file = osp.join(work, 'config.py')
    cfg.dump(cfg_file)
    print(f'[{name}] training (or reusing) {cfg_file}', flush=True)
    info = train(copy.deepcopy(cfg))
    print(f'[{name}] checkpoint {info["checkpoint"]} (trained in {info["train_wall_s"]} s'
          f'{", cached" if info["cached"] else ""})', flush=True)
    if args.train_only:
        return None
    torch.set_num_threads(1)
    batches, dataset = test_batches(cfg)
    num_layers = cfg.model.backbone.arch['num_layers']
    alpha = args.alpha if args.alpha is not None else num_layers // 2
    seg = name == 'segmentor'
    calib = calibrate_temperature(cfg, name, info['checkpoint'], args, alpha)
    print(f'[{name}] Expedite temperature {calib["temperature"]} ({calib["rule"]}: '
          f'{calib.get("agreement", "")})', flush=True)
    points, skipped, models = [], [], []
    ref = None
    for s in settings(name, args, num_layers, calib['temperature']):
        try:
            model = build_model(cfg, info['checkpoint'], s['option'])
        except Skipped as e:
            print(f'[{name}] skipped {s["method"]} {s["knob"]}: {e}', flush=True)
            skipped.append(dict(method=s['method'], knob=s['knob'], reason=str(e)))
            continue
        t0 = time.perf_counter()
        outputs = predict(model, batches)
        metrics = evaluate(cfg, dataset, batches, outputs)
        eval_s = time.perf_counter() - t0
        preds = seg_maps(outputs) if seg else det_boxes(outputs)
        if ref is None:
            ref = preds
        agreement = seg_agreement(ref, preds) if seg else \
            det_agreement(ref, preds, args.det_score_thr)
        metric = float(metrics['mIoU']) if seg else 100.0 * float(metrics['coco/bbox_mAP'])
        extra = dict(aAcc=float(metrics['aAcc'])) if seg else dict(
            mask_ap=100.0 * float(metrics['coco/segm_mAP']),
            box_ap50=100.0 * float(metrics['coco/bbox_mAP_50']))
        macs, feat_macs = forward_macs(model, batches[0])
        if args.memory == 'subprocess':
            mem = memory_subprocess(cfg_file, info['checkpoint'], s['option'])
        else:
            mem = _peak_memory(model, batches[0])
        point = dict(method=s['method'], knob=s['knob'], setting=_json(s['option']),
                     alpha=None if s['option'] is None else alpha, metric=metric,
                     agreement=agreement, gmacs=macs / 1e9,
                     feature_gmacs=feat_macs / 1e9, memory=mem, eval_s=round(eval_s, 2),
                     **extra)
        print(f'[{name}] {s["method"]:9s} {s["knob"]:9s} metric {metric:6.2f} agreement '
              f'{agreement:6.2f} GMACs {macs / 1e9:.3f} memory {mem["peak_growth_mib"]} MiB',
              flush=True)
        points.append(point)
        models.append(model)
    print(f'[{name}] timing {len(models)} settings at threads {args.threads}, {args.rounds} '
          'rounds', flush=True)
    lat = latencies(models, batches[0], args.threads, args.rounds, args.warmup)
    base = points[0]
    for p, la in zip(points, lat):
        p['latency'] = la
        for t in args.threads:
            p[f'latency_{t}t_ms'] = la[str(t)]['median_ms']
    for p in points:
        p['mac_ratio'] = p['gmacs'] / base['gmacs']
        p['feature_mac_ratio'] = p['feature_gmacs'] / base['feature_gmacs']
        for t in args.threads:
            p[f'latency_{t}t_ratio'] = p[f'latency_{t}t_ms'] / base[f'latency_{t}t_ms']
    tokens = (args.img_size // cfg.model.backbone.patch_size) ** 2
    return dict(
        config=osp.relpath(SEG_CONFIG if seg else DET_CONFIG, REPO_ROOT),
        resolved_config=cfg.pretty_text, seed=args.seed, img_size=args.img_size,
        tokens=tokens, num_layers=num_layers, alpha=alpha, expedite_temperature=calib,
        num_train=args.num_train, num_val=args.num_val, test_images=len(dataset),
        train=dict(iters=info['iters'], wall_s=info['train_wall_s'], threads=info['threads'],
                   cached=info['cached']),
        metric_name='mIoU' if seg else 'box AP',
        agreement_rule=SEG_AGREEMENT_RULE if seg else
        DET_AGREEMENT_RULE.format(thr=args.det_score_thr),
        load_average_after=[round(v, 2) for v in os.getloadavg()],
        latency_rule=f'median of {args.rounds} interleaved rounds after {args.warmup} warm-up '
                     'calls per setting, one test forward (model.test_step) of the first test '
                     'image',
        memory_rule=MEMORY_RULE[args.memory],
        macs_rule='mmwinwin.utils.benchmark.count_macs (FlopCounterMode) of model.test_step on '
                  'the first test image (features: of model.extract_feat, the backbone'
                  + ('' if seg else ' and the neck') + ')',
        points=points, skipped=skipped)


# ------------------------------------------------------------------------------- analysis
def _front(pts: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Non-dominated points ``(cost, accuracy, name)`` by increasing cost: each is more
    accurate than every cheaper one (ties in cost: the most accurate)."""
    front = []
    for x, y, n in sorted(pts, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y, n))
    return front


def _curve(front: list, x: float) -> float | None:
    """A front's accuracy at cost ``x``: linear between its points, its best accuracy beyond
    its costliest point, ``None`` below its cheapest point."""
    if x < front[0][0]:
        return None
    for (x0, y0, _), (x1, y1, _) in zip(front, front[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return front[-1][1]


def pareto_check(data: dict, model: str, axis: str = 'gmacs', tol: float = 0.0,
                 accuracy: str = 'metric') -> dict:
    """Whether Expedite's accuracy-vs-cost front is on or above every other method's.

    Rule. For each method, its curve is the Pareto front of its measured points plus the
    unreduced point (shared by all methods: every method tends to it as reduction vanishes),
    cost = ``axis`` (``gmacs``, ``latency_1t_ms``, ...), accuracy = the task metric: the points
    more accurate than every cheaper point, joined by straight lines; beyond the costliest
    front point the curve stays at its best accuracy (a cheaper setting is available); below the
    cheapest point it is undefined. Expedite (E) is on or above method M when, at every
    breakpoint x of either curve where M is defined, E is defined and E(x) >= M(x) - ``tol``
    (both curves are piecewise linear, so checking their breakpoints checks every cost in
    between). A failure names the setting: an M point above E (or cheaper than all of E's),
    or an Expedite point below M's curve. ``accuracy='agreement'`` runs the same rule on the
    agreement with the unreduced model instead of the task metric.

    Returns ``{model, axis, expedite_on_front, compared: [methods], failures: [{method,
    setting, cost, accuracy, expedite_accuracy or other_accuracy, why}]}``.
    """
    m = data['models'][model]
    pts = m['points']
    base = [p for p in pts if p['method'] == 'unreduced']
    if not base:
        raise ValueError(f'{model}: no unreduced point in the data.')
    base_pt = (base[0][axis], base[0][accuracy], 'unreduced')

    def curve_points(method):
        return [(p[axis], p[accuracy], f'{method} {p["knob"]}') for p in pts
                if p['method'] == method] + [base_pt]

    methods = [x for x in METHODS[2:] if any(p['method'] == x for p in pts)]
    if not any(p['method'] == 'expedite' for p in pts):
        return dict(model=model, axis=axis, expedite_on_front=None, compared=methods,
                    failures=[], note='no Expedite point')
    e_front = _front(curve_points('expedite'))
    failures = []
    for method in methods:
        o_pts = curve_points(method)
        o_front = _front(o_pts)
        for x, y, n in o_front:
            if n == 'unreduced':
                continue
            e = _curve(e_front, x)
            if e is None:
                failures.append(dict(method=method, setting=n, cost=x, accuracy=y,
                                     expedite_accuracy=None,
                                     why='cheaper than every Expedite setting'))
            elif e < y - tol:
                failures.append(dict(method=method, setting=n, cost=x, accuracy=y,
                                     expedite_accuracy=e, why='above Expedite\'s front'))
        for x, y, n in e_front:
            if n == 'unreduced':
                continue
            o = _curve(o_front, x)
            if o is not None and y < o - tol:
                failures.append(dict(method=method, setting=n, cost=x, accuracy=y,
                                     other_accuracy=o,
                                     why=f'Expedite point below the {method} front'))
    return dict(model=model, axis=axis, expedite_on_front=not failures, compared=methods,
                failures=failures)


def pareto_summary(data: dict, model: str) -> list[str]:
    """One markdown line per cost axis present in the data."""
    lines = []
    pts = data['models'][model]['points']
    for (axis, label), accuracy in [(a, 'metric') for a in AXES.items()] + \
            [(('feature_gmacs', AXES['feature_gmacs']), 'agreement')]:
        if not pts or axis not in pts[0] or accuracy not in pts[0]:
            continue
        r = pareto_check(data, model, axis, accuracy=accuracy)
        name = data['models'][model].get('metric_name', 'metric') if accuracy == 'metric' \
            else 'agreement'
        label = f'{name} vs {label}'
        if r['expedite_on_front'] is None:
            lines.append(f'* {label}: no Expedite point.')
        elif not r['compared']:
            lines.append(f'* {label}: no other method measured; nothing to compare.')
        elif r['expedite_on_front']:
            lines.append(f'* {label}: Expedite is on or above the front of '
                         f'{", ".join(r["compared"])} over the whole sweep.')
        else:
            parts = []
            for f in r['failures']:
                ref = f.get('expedite_accuracy', f.get('other_accuracy'))
                ref = 'n/a' if ref is None else f'{ref:.2f}'
                parts.append(f'{f["setting"]} ({f["why"]}: {f["accuracy"]:.2f} vs {ref} at '
                             f'{f["cost"]:.3g})')
            lines.append(f'* {label}: Expedite is NOT on the front at: ' + '; '.join(parts) + '.')
    return lines


def _fmt(v, spec='.2f'):
    if v is None or (isinstance(v, float) and v != v):
        return 'n/a'
    return format(v, spec)


def tables(data: dict) -> dict[str, str]:
    """``{model: markdown}``: one table per model (method, knob, GMACs, MAC ratio, metric,
    agreement, latencies at 1 and 2 threads with their ratios, peak memory), the skipped
    methods and the Pareto statements."""
    out = {}
    mach = data.get('machine', {})
    for name, m in data['models'].items():
        mm = m.get('machine', mach)  # a model's own machine record, else the file's
        metric = m.get('metric_name', 'metric')
        lines = [f'### {name}: `{osp.basename(m.get("config", ""))}`', '',
                 f'{m.get("tokens", "?")} tokens per image, {m.get("num_layers", "?")} blocks, '
                 f'alpha {m.get("alpha", "?")}, Expedite t '
                 f'{m.get("expedite_temperature", {}).get("temperature", "?")} '
                 f'({m.get("expedite_temperature", {}).get("rule", "?")}), '
                 f'{m.get("test_images", "?")} test images, seed '
                 f'{m.get("seed", "?")}; trained {m.get("train", {}).get("iters", "?")} '
                 f'iterations in {m.get("train", {}).get("wall_s", "?")} s at '
                 f'{m.get("train", {}).get("threads", "?")} thread(s). Machine: '
                 f'{mm.get("platform", "?")}, {mm.get("usable_cpus", "?")} usable CPUs, '
                 f'torch {mm.get("torch", "?")}; load average (1, 5, 15 min) '
                 f'{mm.get("load_average", "?")} before the sweep, '
                 f'{m.get("load_average_after", "?")} after the timing (other processes '
                 'share the CPUs when these exceed the thread count).', '',
                 f'| method | knob | GMACs | MAC ratio | {metric} | agreement | '
                 'latency 1 thread (ms) | latency 2 threads (ms) | peak memory (MiB) | '
                 'feature GMACs (ratio) |',
                 '|---|---|---|---|---|---|---|---|---|---|']
        for p in m['points']:
            lat = []
            for t in (1, 2):
                ms = p.get(f'latency_{t}t_ms')
                lat.append('n/a' if ms is None else
                           f'{ms:.1f} ({p.get(f"latency_{t}t_ratio", float("nan")):.2f}x)')
            mem = p.get('memory', {}).get('peak_growth_mib')
            feat = 'n/a' if p.get('feature_gmacs') is None else \
                f'{p["feature_gmacs"]:.3f} ({p.get("feature_mac_ratio", float("nan")):.2f})'
            lines.append(f'| {LABELS.get(p["method"], p["method"])} | {p["knob"]} | '
                         f'{_fmt(p["gmacs"], ".3f")} | {_fmt(p.get("mac_ratio"), ".3f")} | '
                         f'{_fmt(p["metric"])} | {_fmt(p.get("agreement"))} | {lat[0]} | '
                         f'{lat[1]} | {_fmt(mem, ".1f")} | {feat} |')
        lines.append('')
        lines.append(f'Agreement: {m.get("agreement_rule", "?")}. Latency: '
                     f'{m.get("latency_rule", "?")}. Memory: {m.get("memory_rule", "?")}. MACs: '
                     f'{m.get("macs_rule", "?")}.')
        for s in m.get('skipped', []):
            lines.append(f'\nSkipped {s["method"]} {s["knob"]}: {s["reason"]}.')
        lines.append('')
        lines.append('Pareto check (rule: `token_reduction.pareto_check`):')
        lines.append('')
        lines += pareto_summary(data, name)
        out[name] = '\n'.join(lines) + '\n'
    return out


def plots(data: dict, out_dir: str) -> list[str]:
    """PNGs per model: accuracy vs GMACs and accuracy vs latency (1 and 2 threads), one line
    per method (each line ends at the shared unreduced point); returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, m in data['models'].items():
        pts = m['points']
        base = [p for p in pts if p['method'] == 'unreduced']
        axes_sets = [('macs', ['gmacs']),
                     ('latency', [a for a in ('latency_1t_ms', 'latency_2t_ms')
                                  if pts and a in pts[0]])]
        for tag, axes in axes_sets:
            if not axes:
                continue
            fig, axs = plt.subplots(1, len(axes), figsize=(5.2 * len(axes), 4), squeeze=False)
            for ax, axis in zip(axs[0], axes):
                for method in METHODS[1:]:
                    mp = sorted([p for p in pts if p['method'] == method] + base,
                                key=lambda p: p[axis])
                    if len(mp) <= len(base):
                        continue
                    ax.plot([p[axis] for p in mp], [p['metric'] for p in mp], marker='o',
                            label=LABELS[method])
                    for p in mp:
                        if p['method'] != 'unreduced':
                            ax.annotate(p['knob'], (p[axis], p['metric']), fontsize=7,
                                        textcoords='offset points', xytext=(3, 3))
                if base:
                    ax.plot([base[0][axis]], [base[0]['metric']], marker='*', color='k',
                            markersize=12, linestyle='none', label='unreduced')
                ax.set_xlabel(AXES[axis])
                ax.set_ylabel(m.get('metric_name', 'metric'))
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
            fig.suptitle(f'{name}: {m.get("tokens", "?")} tokens, alpha {m.get("alpha", "?")}')
            fig.tight_layout()
            path = osp.join(out_dir, f'{name}_accuracy_vs_{tag}.png')
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths


def write_report(data: dict, args) -> None:
    t = tables(data)
    text = '\n'.join(t[k] for k in t)
    if args.tables:
        os.makedirs(osp.dirname(args.tables) or '.', exist_ok=True)
        with open(args.tables, 'w') as f:
            f.write('<!-- generated by python -m mmwinwin.experiments.token_reduction '
                    '--report-only; do not edit -->\n\n' + text)
    print(text)
    for p in plots(data, args.images):
        print('wrote', p)


# ----------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    if args.report_only:
        with open(args.data) as f:
            data = json.load(f)
        write_report(data, args)
        return
    torch = _torch()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = dict(command='python -m mmwinwin.experiments.token_reduction ' +
                ' '.join(argv if argv is not None else sys.argv[1:]),
                machine=machine(), train_threads=1,
                arguments={k: v for k, v in vars(args).items() if k != 'memory_probe'},
                models={})
    if osp.exists(args.data) and not args.train_only:
        with open(args.data) as f:
            old = json.load(f)
        kept = {k: v for k, v in old.get('models', {}).items() if k not in args.models}
        if kept:  # a run of some models keeps the others' stored measurements
            print(f'keeping the stored {sorted(kept)} of {args.data}')
            data['models'].update(kept)
    for name in args.models:
        t1, before = time.perf_counter(), machine()  # its load average: before the sweep
        result = run_model(name, args)
        if result is not None:
            data['models'][name] = dict(
                result, machine=before, command=data['command'],
                date=time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                sweep_wall_s=round(time.perf_counter() - t1, 1))
    if args.train_only:
        return
    data['models'] = {k: data['models'][k] for k in MODEL_NAMES if k in data['models']}
    data['wall_s'] = round(time.perf_counter() - t0, 1)
    os.makedirs(osp.dirname(args.data) or '.', exist_ok=True)
    with open(args.data, 'w') as f:
        json.dump(data, f, indent=1)
    print('wrote', args.data)
    write_report(data, args)


if __name__ == '__main__':
    main()
