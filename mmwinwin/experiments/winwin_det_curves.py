"""Win-Win for detection: box and mask AP (or PQ) curves over seeds, against iterations and time.

The detection counterpart of ``winwin_curves`` (its recorder, summary, table and plots are
``mmwinwin.experiments.curves``). Tiny Mask R-CNN on the tiny ViTDet-style RoPE ViT
(``configs/vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py``, and its Win-Win
twin for variant ``winwin``), built through mmengine's Runner from those configs, with only
the data, the image size, the schedule and the training pipeline replaced. Variants:

* ``fullres``: whole images;
* ``crop``: one random ``--crop`` x ``--crop`` pixel crop per image (about the Win-Win token
  budget), at full scale;
* ``winwin``: 2 random windows of ``--window`` x ``--window`` tokens per image;
* ``winwin_long``: Win-Win trained ``--long-factor`` times as many iterations (the same
  validation points in iterations), to compare at equal training time;
* ``winwin_ft_r100``: ``winwin_ft`` whose phase has its own learning rate
  (``mmwinwin.engine.phase_restart_schedule``: the windows part decays to 0 at the phase,
  which restarts at the config's LR and anneals it to 0);
* ``winwin_ft_r100_l3``: the same with the phase over the last third of ``--iters``;
* ``winwin_pairs``, ``winwin_ft_r100_l3_pairs``: ``winwin``, ``winwin_ft_r100_l3`` whose
  first window holds two objects of one class wherever the image has such a pair that fits
  in a window (``WinWinWindows(same_class_pairs=1)``);
* ``winwin_ft_r100_l3_twin``: ``winwin_ft_r100_l3`` whose whole-image steps sample as the
  ``fullres`` runs do (``full_image_phase.train_cfg`` = the ``fullres`` variant's
  ``train_cfg``: Mask R-CNN's anchors, proposals and RoIs per image, Mask2Former's points
  per mask), where the other phases keep the Win-Win config's per-window settings;
  ``winwin_ft_r100_twin``: ``winwin_ft_r100`` (the last sixth) sampling so;
  ``winwin_ft_h50_r100_l3_twin``: ``winwin_ft_r100_l3_twin`` whose whole-image steps train on
  half of each batch (``full_image_phase.batch_fraction=0.5``, reproduction's (t));
* ``winwin_ft``: Win-Win with the recipe's full-image phase
  (``full_image_phase=dict(begin_fraction=5 / 6)``: the host's loss on whole images for the
  last sixth of ``--iters``; whole-image packing, as every variant here). Its heads keep the
  Win-Win config's training settings in the phase (Mask2Former: the Win-Win run's points per
  mask, ``--light-heads``; Mask R-CNN: its RoIs per image).

``--model mask2former-panoptic`` runs the tiny Mask2Former panoptic segmentor instead
(``configs/vitdet/mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py`` and its
Win-Win twin ``winwin-2x4_mask2former_...``), its heads sized to the cue data's 2 things and
1 stuff class, with the same variants.

Each variant is trained once per seed and *validated on the whole validation images every
``--val-every`` iterations* with mmdet's ``CocoMetric`` (bbox AP and mask AP) or, in the
panoptic mode, ``mmwinwin.CocoPanopticMetric`` (PQ, PQ things, PQ stuff, SQ, RQ), recording
the iteration, the training CPU seconds and the wall seconds (validation excluded). Tasks are
the generated COCO data of ``generate_coco(task=...)`` (``mmwinwin.datasets.synthetic``):
``context`` (identical grey objects whose class is the colour of a beacon at least
``--cue-gap`` pixels away, beyond any window) and ``local`` (the class is the object's colour).

Writes under ``--out``: ``curves.json`` (every point, resumable: runs already stored are
skipped), ``curves.md`` (mean +- std over seeds at every validation point, and the headline
metrics at equal training CPU time) and ``<prefix>_<task>.png`` (bbox AP and mask AP, or PQ,
PQ things and PQ stuff, against iterations and CPU seconds).

    python -m mmwinwin.experiments.winwin_det_curves --tasks context local --seeds 0 1 2 \\
        --variants fullres crop winwin --iters 300 --val-every 75 --out work_dirs/det_curves
    python -m mmwinwin.experiments.winwin_det_curves --plot-only --out work_dirs/det_curves
    python -m mmwinwin.experiments.winwin_det_curves --model mask2former-panoptic \\
        --tasks context --variants fullres winwin crop winwin_long --long-factor 1.6 \\
        --iters 600 --val-every 100 --out work_dirs/det_panoptic_curves
    python -m mmwinwin.experiments.winwin_det_curves --model mask2former-panoptic \
        --tasks local --seeds 0 1 2 --variants fullres winwin winwin_ft --iters 600 \
        --val-every 100 --out docs/curves/det_panoptic_local_phase

With ``fullres`` and ``winwin_ft`` stored, ``curves.md`` ends with the recipe criterion of
:func:`mmwinwin.experiments.comparison.criterion_table` (end-of-schedule metric ratio and
training-time ratio against ``fullres``, per seed) for the first headline metric and, in
the panoptic mode, PQ things.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import os.path as osp
import tempfile

from . import REPO_ROOT
from .curves import CurveRecorder, is_stored, plot, summarise, write_table

BASE_CONFIG = osp.join(REPO_ROOT,
                       'configs/vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py')
WINWIN_CONFIG_GLOB = osp.join(REPO_ROOT, 'configs/vitdet/winwin-*mask-rcnn*coco-synth*.py')
PANOPTIC_CONFIG = osp.join(
    REPO_ROOT, 'configs/vitdet/mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py')
WINWIN_PANOPTIC_CONFIG = osp.join(
    REPO_ROOT,
    'configs/vitdet/winwin-2x4_mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py')
MODELS = ('mask-rcnn', 'mask2former-panoptic')

VARIANTS = {
    'winwin': 'Win-Win, 2 windows',
    'winwin_long': 'Win-Win, 2 windows, longer (equal time)',
    'winwin_ft': 'Win-Win, 2 windows + full-image phase (last 1/6)',
    'winwin_ft_r100': 'Win-Win, 2 windows + full-image phase (last 1/6), phase LR restarted',
    'winwin_ft_r100_l3': 'Win-Win, 2 windows + full-image phase (last 1/3), phase LR '
                         'restarted',
    # the first window over two objects of one class wherever the image has a pair
    'winwin_pairs': 'Win-Win, 2 windows, the first over a same-class pair',
    # and (r) with it
    'winwin_ft_r100_l3_pairs': 'Win-Win, 2 windows, the first over a same-class pair + '
                               'full-image phase (last 1/3), phase LR restarted',
    # (r) whose whole-image steps sample as full resolution (full_image_phase.train_cfg)
    'winwin_ft_r100_l3_twin': 'Win-Win, 2 windows + full-image phase (last 1/3) sampling as '
                              'full resolution, phase LR restarted',
    # and (p), the last sixth, so: the cheaper phase
    'winwin_ft_r100_twin': 'Win-Win, 2 windows + full-image phase (last 1/6) sampling as '
                           'full resolution, phase LR restarted',
    # and (v) on half of each batch in the phase ((t)'s batch_fraction): about (w)'s cost
    'winwin_ft_h50_r100_l3_twin': 'Win-Win, 2 windows + full-image phase (last 1/3) on half '
                                  'of each batch sampling as full resolution, phase LR '
                                  'restarted',
    'fullres': 'full resolution',
    'crop': 'crop, same token budget',
}
TASKS = ('context', 'local')
#: the variants ``*_pairs``: WinWinWindows(same_class_pairs=PAIR_SHARE)
PAIR_SHARE = 1.0
METRICS = {'bbox AP': 'coco/bbox_mAP', 'mask AP': 'coco/segm_mAP',
           'bbox AP50': 'coco/bbox_mAP_50', 'mask AP50': 'coco/segm_mAP_50'}
# mmwinwin.CocoPanopticMetric (already in percent): all segments, things, stuff
PANOPTIC_METRICS = {'PQ': 'coco_panoptic/PQ', 'PQ things': 'coco_panoptic/PQ_th',
                    'PQ stuff': 'coco_panoptic/PQ_st', 'SQ': 'coco_panoptic/SQ',
                    'RQ': 'coco_panoptic/RQ'}
TEST_META = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')


def label(name: str) -> str:
    return VARIANTS.get(name, name)


def metrics_of(model: str) -> dict[str, str]:
    """Stored name -> evaluator key of the metrics a model's runs record."""
    return PANOPTIC_METRICS if model == 'mask2former-panoptic' else METRICS


def headline(model: str) -> tuple[str, ...]:
    """The metrics drawn and put in the equal-time table."""
    return ('PQ', 'PQ things', 'PQ stuff') if model == 'mask2former-panoptic' \
        else ('bbox AP', 'mask AP')


def winwin_config() -> str:
    """The tiny Win-Win Mask R-CNN config (``configs/vitdet/winwin-*``)."""
    found = sorted(p for p in glob.glob(WINWIN_CONFIG_GLOB) if 'mask2former' not in p)
    if not found:
        raise FileNotFoundError(
            f'No tiny Win-Win Mask R-CNN config matches {WINWIN_CONFIG_GLOB}; variant winwin '
            'needs the Win-Win detector (branch winwin-det). Run the other variants with '
            '--variants fullres crop.')
    return found[0]


def config_path(model: str, variant: str) -> str:
    if model == 'mask2former-panoptic':
        return WINWIN_PANOPTIC_CONFIG if variant.startswith('winwin') else PANOPTIC_CONFIG
    return winwin_config() if variant.startswith('winwin') else BASE_CONFIG


def train_pipeline(variant: str, crop: int, window: int, model: str = 'mask-rcnn',
                   patch_size: int = 16) -> list[dict]:
    """Loading, the variant's sampling of the training pixels, flip, packing; Win-Win
    windows of ``window`` x ``window`` tokens of ``patch_size`` (the backbone's)."""
    if model == 'mask2former-panoptic':  # things and stuff: masks, boxes and the segment map
        pipe = [dict(type='CheckedLoadImageFromFile', to_float32=True),
                dict(type='mmwinwin.LoadPanopticAnnotations', with_bbox=True, with_mask=True,
                     with_seg=True)]
    else:
        pipe = [dict(type='CheckedLoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    if variant == 'crop':
        pipe.append(dict(type='RandomCrop', crop_size=(crop, crop), crop_type='absolute',
                         recompute_bbox=True, allow_negative_crop=True))
        if model != 'mask2former-panoptic':  # the panoptic configs keep mmdet's crop only
            pipe.append(dict(type='FilterAnnotations', min_gt_bbox_wh=(1.0, 1.0)))
    pipe.append(dict(type='RandomFlip', prob=0.5))
    if variant.startswith('winwin'):
        windows = dict(type='WinWinWindows', num_windows=2, window_size=window,
                       patch_size=patch_size)
        if variant.endswith('_pairs'):
            windows['same_class_pairs'] = PAIR_SHARE
        pipe += [windows, dict(type='WinWinPackDetInputs')]
    else:
        pipe.append(dict(type='PackDetInputs'))
    return pipe


def panoptic_metainfo(task: str) -> dict:
    """CocoPanopticDataset metainfo of a cue task: the things, then the one stuff class."""
    from mmwinwin.datasets.synthetic.coco_cue import cue_categories
    cats = cue_categories(task)
    things = tuple(c['name'] for c in cats if c['isthing'])
    stuff = tuple(c['name'] for c in cats if not c['isthing'])
    return dict(classes=things + stuff, thing_classes=things, stuff_classes=stuff,
                palette=[tuple(c['color']) for c in cats])


def _data_cfg(model: str, task: str, data_root: str, variant: str, args,
              patch_size: int) -> dict:
    """Training / validation dataloaders and the evaluator of a model on a cue task
    (``patch_size``: the backbone's, for the Win-Win windows)."""
    from mmwinwin.datasets.synthetic import cue_metainfo

    H, W = args.img_size
    pan = model == 'mask2former-panoptic'
    if pan:
        dataset = dict(type='CocoPanopticDataset', data_root=data_root,
                       metainfo=panoptic_metainfo(task))
        train_files = dict(ann_file='annotations/panoptic_train2017.json',
                           data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'))
        val_files = dict(ann_file='annotations/panoptic_val2017.json',
                         data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'))
        val_load = [dict(type='CheckedLoadImageFromFile', to_float32=True),
                    dict(type='Resize', scale=(W, H), keep_ratio=True),
                    dict(type='mmwinwin.LoadPanopticAnnotations')]
        evaluator = dict(type='mmwinwin.CocoPanopticMetric',
                         ann_file=osp.join(data_root, 'annotations/panoptic_val2017.json'),
                         seg_prefix=osp.join(data_root, 'annotations/panoptic_val2017/'))
    else:
        dataset = dict(type='CocoDataset', data_root=data_root,
                       metainfo=dict(classes=cue_metainfo(task)['classes']))
        train_files = dict(ann_file='annotations/instances_train2017.json',
                           data_prefix=dict(img='train2017/'))
        val_files = dict(ann_file='annotations/instances_val2017.json',
                         data_prefix=dict(img='val2017/'))
        val_load = [dict(type='CheckedLoadImageFromFile'),
                    # the whole image at its own size (records scale_factor 1)
                    dict(type='Resize', scale=(W, H), keep_ratio=True),
                    dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
        evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'],
                         ann_file=osp.join(data_root, 'annotations/instances_val2017.json'))
    train = dict(
        batch_size=args.batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(dataset, **train_files, filter_cfg=dict(filter_empty_gt=True),
                     pipeline=train_pipeline(variant, args.crop, args.window, model,
                                             patch_size)))
    val = dict(
        batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(dataset, **val_files, test_mode=True,
                     pipeline=val_load + [dict(type='PackDetInputs', meta_keys=TEST_META)]))
    return dict(train=train, val=val, evaluator=evaluator)


def _panoptic_heads(cfg, task: str, variant: str, args) -> None:
    """The tiny Mask2Former's heads sized to the cue task's 2 things + 1 stuff class;
    ``--light-heads 1`` also samples fewer points for the mask losses."""
    things = len(panoptic_metainfo(task)['thing_classes'])
    stuff = len(panoptic_metainfo(task)['stuff_classes'])
    head = cfg.model.panoptic_head
    head.num_things_classes, head.num_stuff_classes = things, stuff
    # as the config: weight 1 per class, 0.1 for "no object"
    head.loss_cls.class_weight = [1.0] * (things + stuff) + [0.1]
    cfg.model.panoptic_fusion_head.num_things_classes = things
    cfg.model.panoptic_fusion_head.num_stuff_classes = stuff
    cfg.model.test_cfg.instance_on = False  # PQ needs the panoptic output only
    if getattr(args, 'object_mask_thr', None) is not None:  # Mask2Former's default: 0.8
        cfg.model.test_cfg.object_mask_thr = args.object_mask_thr
    if args.light_heads:  # the config's 1024 points per mask (256 per Win-Win window) -> 1/4
        cfg.model.train_cfg.num_points = 64 if variant.startswith('winwin') else 256


def _light_roi_heads(cfg, variant: str) -> None:
    """``--light-heads 1`` for Mask R-CNN: RoI heads dominate the cost of a tiny backbone on
    small images."""
    roi = cfg.model.roi_head
    roi.bbox_head.type = 'Shared2FCBBoxHead'
    roi.mask_head.num_convs = 2
    # 32 RoIs per training image; Win-Win windows are images of their own for the heads
    cfg.model.train_cfg.rcnn.sampler.num = 16 if variant.startswith('winwin') else 32


def full_resolution_train_cfg(model: str, task: str, args) -> dict:
    """The ``train_cfg`` of the ``fullres`` runs (variant ``*_twin``'s phase samples as they
    do)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config_path(model, 'fullres'))
    if model == 'mask2former-panoptic':
        _panoptic_heads(cfg, task, 'fullres', args)
    elif args.light_heads:
        _light_roi_heads(cfg, 'fullres')
    return cfg.model.train_cfg.to_dict()


def build_cfg(variant: str, task: str, data_root: str, work_dir: str, args, seed: int):
    """The mmengine Config of one run: the tiny config of ``args.model`` with the data, size
    and schedule replaced, validating on whole images every ``args.val_every`` iterations."""
    from mmengine.config import Config

    model = getattr(args, 'model', 'mask-rcnn')
    cfg = Config.fromfile(config_path(model, variant))
    iters = round(args.iters * args.long_factor) if variant == 'winwin_long' else args.iters
    H, W = args.img_size
    train_size = (args.crop, args.crop) if variant == 'crop' else (H, W)
    cfg.work_dir = work_dir
    pad = dict(type='BatchFixedSizePad', size=train_size, pad_mask=True)
    if model == 'mask2former-panoptic':  # as the config: pad masks 0, segment map void
        pad.update(img_pad_value=0, mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    cfg.model.data_preprocessor.batch_augments = [pad]
    data = _data_cfg(model, task, data_root, variant, args,
                     patch_size=cfg.model.backbone.patch_size)
    cfg.train_dataloader = data['train']
    cfg.val_dataloader = data['val']
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = data['evaluator']
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=args.val_every)
    cfg.val_cfg = dict(type='ValLoop')
    if model == 'mask2former-panoptic':
        _panoptic_heads(cfg, task, variant, args)
    elif args.light_heads:
        _light_roi_heads(cfg, variant)
    cfg.optim_wrapper.optimizer.lr = args.lr
    warm = max(1, args.iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warm),
        dict(type='PolyLR', power=1.0, begin=warm, end=iters, eta_min=0.0, by_epoch=False)]
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(1, iters // 4),
                                    log_metric_by_epoch=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=-1,
                                        save_last=False)
    from .reproduction import PART_BATCH_PHASES, RESTART_PHASES, restart_phase
    phase = variant.removesuffix('_pairs').removesuffix('_twin')  # placement, sampling aside
    if variant.startswith('winwin'):  # the config's recipe replaced by the variant's own
        cfg.model.full_image_phase = None
    if phase in RESTART_PHASES:  # the phase with its own LR of reproduction's variant
        cfg.model.full_image_phase, cfg.param_scheduler = restart_phase(
            phase, cfg.param_scheduler, iters)
        if phase in PART_BATCH_PHASES:  # (t)'s phase on part of each batch
            cfg.model.full_image_phase['batch_fraction'] = PART_BATCH_PHASES[phase]
    elif variant.startswith('winwin_ft'):  # the recipe's phase (configs/_base_/winwin/...)
        cfg.model.full_image_phase = dict(begin_fraction=5 / 6)
    if variant.endswith('_twin'):
        cfg.model.full_image_phase['train_cfg'] = full_resolution_train_cfg(model, task, args)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'
    return cfg


def run_one(variant: str, task: str, seed: int, args, work: str, key: dict) -> list[dict]:
    from mmengine.hooks import Hook
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from mmwinwin.datasets.synthetic import generate_coco

    data = osp.join(work, f'data_{task}_seed{seed}')  # instances and panoptic files
    if not osp.isdir(data):
        generate_coco(data, num_train=args.num_train, num_val=args.num_val,
                      img_size=tuple(args.img_size), seed=seed, task=task, cue_gap=args.cue_gap)
    name = f'{args.model}_{task}_{variant}_seed{seed}'
    cfg = build_cfg(variant, task, data, osp.join(work, name), args, seed)
    runner = Runner.from_cfg(cfg)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder(metrics_of(args.model))
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    partial = osp.join(args.out, f'partial_{name}.json')

    class _SavePartial(Hook):  # the points so far, should the run be stopped early
        priority = 'LOWEST'

        def after_val_epoch(self, runner, metrics=None):
            with open(partial, 'w') as f:
                json.dump(dict(key, points=in_percent(rec.points, args.model)), f, indent=1)

    runner.register_hook(_SavePartial(), priority='LOWEST')
    runner.train()
    if osp.exists(partial):
        os.remove(partial)
    return in_percent(rec.points, args.model)


def in_percent(points: list[dict], model: str = 'mask-rcnn') -> list[dict]:
    """CocoMetric reports fractions, CocoPanopticMetric percent; the curves are in percent."""
    if model == 'mask2former-panoptic':
        return [dict(p, **{n: round(p[n], 2) for n in PANOPTIC_METRICS}) for p in points]
    return [dict(p, **{name: round(100.0 * p[name], 2) for name in METRICS}) for p in points]


def equal_time(results: list[dict], metric: str, reference: str = 'fullres',
               slack: float = 0.05) -> dict:
    """The metric each variant had reached by the reference variant's training times.

    For every task, the times are the reference variant's mean training CPU seconds at its
    validation points (its own row is those points). For every other run, the value at time
    t is the run's last validation point whose CPU seconds are at most ``(1 + slack) * t`` (a
    point is what a run *had* at that time: nothing is interpolated); a time before a run's
    first point, or a variant whose runs have not all reached it, has no value.

    Returns {task: {'times': [...], 'rows': {variant: [(mean, std, mean iteration) | None]}}}.
    """
    import numpy as np
    out = {}
    for task in sorted({r['task'] for r in results}):
        ref = [r['points'] for r in results if r['task'] == task and r['variant'] == reference]
        if not ref:
            continue
        n = min(len(p) for p in ref)
        times = [float(np.mean([p[i]['cpu_s'] for p in ref])) for i in range(n)]
        rows = {}
        for variant in dict.fromkeys(r['variant'] for r in results if r['task'] == task):
            runs = [r['points'] for r in results if r['task'] == task and r['variant'] == variant]
            cells = []
            for i, t in enumerate(times):
                if variant == reference:  # its own i-th points define the time
                    reached = [pts[:i + 1] for pts in runs]
                else:
                    reached = [[q for q in pts if q['cpu_s'] <= (1 + slack) * t] for pts in runs]
                if not all(reached):
                    cells.append(None)
                    continue
                vals = np.array([pts[-1][metric] for pts in reached])
                its = np.mean([pts[-1]['iter'] for pts in reached])
                cells.append((float(vals.mean()), float(vals.std()), float(its)))
            rows[variant] = cells
        out[task] = dict(times=times, rows=rows)
    return out


def equal_time_table(table: dict, metric: str) -> str:
    """Markdown of :func:`equal_time`: one table per task, a column per reference time."""
    lines = [f'{metric} at equal training CPU time (columns: the full-resolution runs\' mean '
             'CPU seconds at their validation points; other variants: the last validation point '
             'each run had reached by then, +5 %; mean +- std over seeds, in brackets the mean '
             'iteration of that point; - where not every seed had a point by then)', '']
    for task, t in table.items():
        lines += [f'#### task `{task}`', '',
                  '| variant | ' + ' | '.join(f'{s:.0f} s' for s in t['times']) + ' |',
                  '|---|' + '---:|' * len(t['times'])]
        for variant, cells in t['rows'].items():
            lines.append(f'| {label(variant)} | ' + ' | '.join(
                '-' if c is None else f'{c[0]:.1f} +- {c[1]:.1f} ({c[2]:.0f} it)'
                for c in cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def report(results: list[dict], args) -> None:
    """curves.md (a table per metric at equal iterations, the headline metrics at equal
    CPU time) and the PNGs, from the stored results of ``args.model``."""
    results = [r for r in results if r.get('model', 'mask-rcnn') == args.model]
    if not results:
        print('[det-curves] nothing stored yet in', args.out, 'for', args.model)
        return
    line = (f'{args.model}, {args.img_size[0]}x{args.img_size[1]} images, window {args.window}, '
            f'crop {args.crop}, batch {args.batch_size}, {args.threads} thread(s)')
    # tables and plots from complete runs only (a summary cuts every seed to the shortest)
    complete = [r for r in results if not r.get('partial')]
    summaries, texts = {}, []
    main_metrics = headline(args.model)
    for metric in metrics_of(args.model):  # AP50 too: more legible while AP is small
        summary = summarise(complete, metric)
        texts.append(write_table(summary, None, line, metric=metric, label_fn=label))
        if metric in main_metrics:
            summaries[metric] = summary
    for metric in main_metrics:
        texts.append(equal_time_table(equal_time(complete, metric), metric))
    texts += criterion_text(complete, args.model)
    partial = [r for r in results if r.get('partial')]
    if partial:
        texts += ['Runs stopped before their last iteration (not in the tables above; '
                  f'iteration: {" / ".join(main_metrics)} (training CPU s)):', '']
        texts += [f'- {r["task"]}, {label(r["variant"])}, seed {r["seed"]}: ' + ', '.join(
            f'{p["iter"]}: ' + ' / '.join(f'{p[m]:.1f}' for m in main_metrics)
            + f' ({p["cpu_s"]:.0f} s)' for p in r['points']) for r in partial]
        texts.append('')
    text = '\n'.join(texts)
    with open(osp.join(args.out, 'curves.md'), 'w') as f:
        f.write(text)
    print(text)
    for p in plot(summaries, args.out, label_fn=label,
                  prefix=args.prefix):
        print('[det-curves] wrote', p)


def criterion_text(results: list[dict], model: str) -> list[str]:
    """The recipe criterion (``comparison.criterion_table``) of ``winwin_ft`` against
    ``fullres`` on the tasks where both have runs, as markdown blocks (none otherwise)."""
    from .comparison import END_RATIO, TIME_RATIO, criterion_table

    tasks = [t for t in dict.fromkeys(r['task'] for r in results)
             if {'fullres', 'winwin_ft'} <= {r['variant'] for r in results if r['task'] == t}]
    if not tasks:
        return []
    out = []
    metrics = ('PQ', 'PQ things') if model == 'mask2former-panoptic' else ('mask AP',)
    for metric in metrics:
        out += [f'Recipe criterion, {metric}: {label("winwin_ft")} against full resolution '
                f'(end: metric ratio >= {END_RATIO} in <= {TIME_RATIO} of the training CPU '
                'time; mmwinwin.experiments.comparison)', '',
                criterion_table(results, tasks, recipe='winwin_ft', baseline='fullres',
                                metric=metric), '']
    return out


def older_keys(run: dict) -> dict:
    """A stored run's key as this version writes it: stores written before the panoptic
    mode hold Mask R-CNN runs, and their ``winwin_long`` runs trained 2x ``--iters``."""
    run.setdefault('model', 'mask-rcnn')
    if run['variant'] == 'winwin_long':
        run.setdefault('long_factor', 2.0)
    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='mask-rcnn', choices=MODELS,
                        help='mask-rcnn: box and mask AP (CocoMetric); mask2former-panoptic: '
                             'PQ, PQ things / stuff (mmwinwin.CocoPanopticMetric)')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS)
    parser.add_argument('--variants', nargs='+', default=['fullres', 'crop', 'winwin'],
                        choices=list(VARIANTS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--val-every', type=int, default=75)
    parser.add_argument('--long-factor', type=float, default=2,
                        help='winwin_long trains this many times --iters (choose the ratio of '
                             'the full-resolution to the Win-Win step cost for equal time)')
    parser.add_argument('--img-size', type=int, nargs=2, default=(128, 256), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=4, help='Win-Win window side in tokens')
    parser.add_argument('--crop', type=int, default=96, help='crop side in pixels')
    parser.add_argument('--cue-gap', type=int, default=64,
                        help='least beacon-object gap in pixels (>= the window side)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--light-heads', type=int, default=1, choices=(0, 1),
                        help='mask-rcnn, 1: a 2-FC box head, a 2-conv mask head and 32 '
                             "sampled RoIs per image instead of the tiny config's 4-conv heads "
                             'and 64 RoIs (the RoI heads, not the backbone, dominate the CPU '
                             'cost here); mask2former-panoptic, 1: the mask losses sample 256 '
                             'points per mask (64 per Win-Win window) instead of 1024 (256)')
    parser.add_argument('--object-mask-thr', type=float, default=None,
                        help='mask2former-panoptic: least class probability of a kept segment '
                             "(default: Mask2Former's 0.8); a lower value shows whether a model "
                             'finds objects it cannot name confidently')
    parser.add_argument('--num-train', type=int, default=96)
    parser.add_argument('--num-val', type=int, default=8)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', required=True, help='folder for curves.json/.md and PNGs')
    parser.add_argument('--prefix', default=None,
                        help='PNG file name prefix (default: winwin_det_curves, '
                             'winwin_det_panoptic_curves for mask2former-panoptic)')
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    parser.add_argument('--merge', nargs='+', default=None, metavar='DIR',
                        help='add the runs stored under these --out folders (parallel '
                             'processes; runs stopped early count with their points so far)')
    parser.add_argument('--plot-only', action='store_true',
                        help='re-draw the table and plots from OUT/curves.json')
    args = parser.parse_args(argv)
    if args.object_mask_thr is not None and (args.model != 'mask2former-panoptic'
                                             or not 0.0 <= args.object_mask_thr < 1.0):
        parser.error('--object-mask-thr is a class probability in [0, 1) of Mask2Former\'s '
                     'panoptic fusion; use it with --model mask2former-panoptic only.')
    if args.prefix is None:
        args.prefix = ('winwin_det_panoptic_curves' if args.model == 'mask2former-panoptic'
                       else 'winwin_det_curves')
    if args.window * 16 > args.cue_gap:
        parser.error(f'--cue-gap {args.cue_gap} px is smaller than a window '
                     f'({args.window} tokens = {args.window * 16} px): a window could show an '
                     'object and its beacon together. Raise --cue-gap or lower --window.')
    os.makedirs(args.out, exist_ok=True)
    store = osp.join(args.out, 'curves.json')
    results = json.load(open(store)) if osp.exists(store) else []
    for r in results:
        older_keys(r)
    if args.merge:  # complete runs of other stores (parallel processes), then their partials
        for other in args.merge:
            found = json.load(open(osp.join(other, 'curves.json'))) \
                if osp.exists(osp.join(other, 'curves.json')) else []
            found += [dict(json.load(open(p)), partial=True)
                      for p in sorted(glob.glob(osp.join(other, 'partial_*.json')))]
            for r in found:
                older_keys(r)
                same = [k for k in r if k not in ('points', 'partial')]
                if not any(all(q.get(k) == r[k] for k in same) for q in results):
                    results.append(r)
        with open(store, 'w') as f:
            json.dump(results, f, indent=1)
    if not args.plot_only:
        import torch
        torch.set_num_threads(args.threads)
        work = args.work_dir or tempfile.mkdtemp(prefix='winwin_det_curves_')
        for seed in args.seeds:
            for task in args.tasks:
                for variant in args.variants:
                    key = dict(model=args.model, task=task, variant=variant, seed=seed, iters=args.iters,
                               img_size=list(args.img_size), window=args.window,
                               crop=args.crop, lr=args.lr, batch_size=args.batch_size,
                               light_heads=args.light_heads)
                    if variant == 'winwin_long':
                        key['long_factor'] = args.long_factor
                    if args.object_mask_thr is not None:
                        key['object_mask_thr'] = args.object_mask_thr
                    if is_stored(results, key):
                        continue  # already measured: the run is resumable
                    print(f'[det-curves] task {task} | {label(variant)} | seed {seed}',
                          flush=True)
                    pts = run_one(variant, task, seed, args, work, key)
                    results.append(dict(key, points=pts))
                    with open(store, 'w') as f:
                        json.dump(results, f, indent=1)
                    print('[det-curves]   ' + ', '.join(
                        f'{p["iter"]}: ' + ' '.join(
                            f'{m} {p[m]:.1f}' for m in headline(args.model))
                        + f' ({p["cpu_s"]:.0f} cpu s, {p["train_s"]:.0f} wall s)'
                        for p in pts), flush=True)
    report(results, args)


if __name__ == '__main__':
    main()
