"""Win-Win on generated optical flow (and depth): learning curves of the recipe against full
resolution, judged with the project's criterion (lower is better).

The flow counterpart of ``winwin_curves`` (its recorder, summary, table and plots are
``mmwinwin.experiments.curves``; the criterion is ``mmwinwin.experiments.comparison`` with
``lower_is_better=True``). The tiny models are built through mmengine's Runner from their
configs, with only the data root, the seed, the schedule (``--iters``, the learning-rate
schedule's end with it), the validation schedule and the checkpoints (none) replaced.

* ``--task flow`` (EPE): ``configs/winwin_flow/experiments/fullres_crocoflow-vit-tiny_1xb4-2k_*``
  (variant ``fullres``: whole frame pairs) and ``winwin-2x4_crocoflow-*`` (variant
  ``winwin_ft``: 2 windows of 4x4 tokens per pair). The recipe's whole-image phase
  ``full_image_phase=dict(begin_fraction=5/6)`` is not in that experiment config, so this
  tool sets it (:data:`RECIPE_PHASE`; stored as ``full_image_phase_set_by_tool``). Data:
  ``generate_sintel_flow`` (128x192, ``max_flow`` 24).
* ``--task depth`` (RMSE): ``configs/winwin/vitdepth_rope-vit-tiny_fullres_*`` and
  ``winwin-2x4_vitdepth_*`` (which carries the recipe); data: ``generate_nyu`` (128x192).

Every run of a seed trains on the data generated with that seed (``--num-train`` training
and ``--num-val`` validation images; flow draws its validation pairs from seed + 1) and is
validated on the whole validation images every ``--val-every`` iterations with the config's
evaluator, recording the iteration, the training CPU seconds and the wall seconds
(validation excluded); the configs' ``RNGStateHook`` keeps validation off the training RNG.
Seeds outermost, one run at a time; each finished run is stored at once in
``OUT/curves.json`` with its settings, so a rerun skips stored runs (and refuses other
settings). Writes ``curves.md`` (mean +- std over seeds, per-seed and end-of-schedule
tables, the criterion) and ``curves_<task>.png``.

    python -m mmwinwin.experiments.winwin_flow_curves --seeds 0 1 2 \\
        --variants fullres winwin_ft --val-every 250 --out docs/curves/flow_same_batch
    python -m mmwinwin.experiments.winwin_flow_curves --plot-only --out docs/curves/flow_same_batch
    python -m mmwinwin.experiments.winwin_flow_curves --task depth --seeds 0 1 2 \\
        --iters 2000 --val-every 250 --out docs/curves/depth_same_batch
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import os.path as osp
import tempfile
import time

from . import REPO_ROOT
from .comparison import criterion_table, final_rows, final_table
from .curves import (CurveRecorder, is_stored, plot, refuse_other_settings, summarise,
                     write_table)
from .reproduction import RESTART_PHASES, restart_phase

FLOW_DIR = 'configs/winwin_flow/experiments'
DEPTH_DIR = 'configs/winwin'
RECIPE_PHASE = dict(begin_fraction=5 / 6)
IMG_SIZE = (128, 192)


def _gen_flow(path, num_train, num_val, seed):
    from mmwinwin.datasets.synthetic.flow import generate_sintel_flow
    generate_sintel_flow(path, num_train=num_train, num_val=num_val, img_size=IMG_SIZE,
                         seed=seed, max_flow=24.0)


def _gen_depth(path, num_train, num_val, seed):
    from mmwinwin.datasets.synthetic.nyu import generate_nyu
    generate_nyu(path, num_train=num_train, num_val=num_val, img_size=IMG_SIZE, seed=seed)


def _roots_flow(cfg, path):
    cfg.train_dataloader.dataset.data_root = osp.join(path, 'train')
    cfg.val_dataloader.dataset.data_root = osp.join(path, 'val')


def _roots_depth(cfg, path):
    cfg.train_dataloader.dataset.data_root = path
    cfg.val_dataloader.dataset.data_root = path


#: per task: the two variants' configs, the metric (lower is better) and the recorded
#: metrics (stored name -> evaluator key), the data (generator, default sizes, where the
#: config reads it)
TASKS = {
    'flow': dict(
        configs={'fullres': f'{FLOW_DIR}/fullres_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-'
                            '128x192.py',
                 'winwin_ft': f'{FLOW_DIR}/winwin-2x4_crocoflow-vit-tiny_1xb4-2k_synthetic-flow-'
                              '128x192.py'},
        metric='EPE', metric_keys={'EPE': 'flow/EPE', '1px': 'flow/1px', '3px': 'flow/3px',
                                   'Fl-all': 'flow/Fl-all'},
        generate=_gen_flow, roots=_roots_flow, num_train=256, num_val=8,
        data_note='generate_sintel_flow, max_flow 24'),
    'depth': dict(
        configs={'fullres': f'{DEPTH_DIR}/vitdepth_rope-vit-tiny_fullres_1xb2-20i_synthetic-nyu-'
                            '128x192.py',
                 'winwin_ft': f'{DEPTH_DIR}/winwin-2x4_vitdepth_rope-vit-tiny_1xb2-20i_synthetic-'
                              'nyu-128x192.py'},
        metric='RMSE', metric_keys={'RMSE': 'rmse', 'AbsRel': 'abs_rel', 'd1': 'd1'},
        generate=_gen_depth, roots=_roots_depth, num_train=256, num_val=8,
        data_note='generate_nyu'),
}
VARIANTS = ('fullres', 'winwin_ft', 'winwin_ft_r100', 'winwin_ft_r100_l3')
LABELS = {'fullres': 'full resolution',
          'winwin_ft': "Win-Win 2x4 + whole images from 5/6 (depth's recipe)",
          'winwin_ft_r100': "Win-Win 2x4 + whole images from 5/6, phase LR restarted at 1 "
                            "(flow's recipe)",
          'winwin_ft_r100_l3': 'Win-Win 2x4 + whole images from 2/3, phase LR restarted at 1'}


def label(name: str) -> str:
    return LABELS.get(name, name)


def config_of(task: str, variant: str) -> str:
    """The config file of a variant (the phase-restart variants train the recipe's config)."""
    return TASKS[task]['configs']['winwin_ft' if variant in RESTART_PHASES else variant]


def build_cfg(task: str, variant: str, data_root: str, work_dir: str, seed: int,
              iters: int | None, val_every: int):
    """The variant's config for one run (see the module doc); ``iters=None`` keeps the
    config's schedule. Returns ``(cfg, set_phase)``: whether this tool set the recipe's
    ``full_image_phase`` (the config lacks it)."""
    from mmengine.config import Config
    path = config_of(task, variant)
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    cfg.work_dir = work_dir
    TASKS[task]['roots'](cfg, data_root)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.randomness = dict(seed=seed)
    iters = iters or cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_every
    for sched in cfg.param_scheduler:
        sched['end'] = iters
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = iters
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=-1,
                                        save_last=False)
    if not any(h.get('type') == 'RNGStateHook' for h in cfg.get('custom_hooks', [])):
        raise ValueError(f'{path} declares no RNGStateHook: validation would move the '
                         'training RNG.')
    set_phase = False
    if variant != 'fullres' and not cfg.model.get('full_image_phase'):
        cfg.model.full_image_phase = dict(RECIPE_PHASE)
        set_phase = True
    if variant in RESTART_PHASES:  # the phase and restart of reproduction's variant of that name
        phase, cfg.param_scheduler = restart_phase(variant, cfg.param_scheduler, iters)
        if cfg.model.get('full_image_phase') != phase:
            cfg.model.full_image_phase, set_phase = phase, True
    return cfg, set_phase


def data_dir(task: str, work: str, seed: int, num_train: int, num_val: int) -> str:
    """The generated data of ``task`` and ``seed`` under ``work`` (written once)."""
    path = osp.join(work, f'data_{task}_seed{seed}_{num_train}_{num_val}')
    if not osp.isdir(path):
        TASKS[task]['generate'](path, num_train, num_val, seed)
    return path


def run_one(task: str, variant: str, seed: int, args, work: str) -> tuple[list[dict], dict]:
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    cfg, set_phase = build_cfg(task, variant,
                               data_dir(task, work, seed, args.num_train, args.num_val),
                               osp.join(work, f'{task}_{variant}_seed{seed}'), seed, args.iters,
                               args.val_every)
    runner = Runner.from_cfg(cfg)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder(TASKS[task]['metric_keys'])
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    return rec.points, dict(config=config_of(task, variant),
                            iters=cfg.train_cfg.max_iters,
                            lr_schedule=[dict(s) for s in cfg.param_scheduler],
                            batch_size=cfg.train_dataloader.batch_size,
                            full_image_phase=cfg.model.get('full_image_phase'),
                            full_image_phase_set_by_tool=set_phase)


def run_key(task: str, variant: str, seed: int, iters: int) -> dict:
    """What identifies one run in ``curves.json`` (a resumed invocation skips stored runs)."""
    return dict(task=task, variant=variant, seed=seed, iters=iters, img_size=list(IMG_SIZE))


def batch_settings(args) -> dict:
    return dict(val_every=args.val_every, threads=args.threads, data_seed='run seed',
                num_train=args.num_train, num_val=args.num_val,
                **({'max_flow': 24.0} if args.task == 'flow' else {}))


def run_batch(args, results: list, store: str, iters: int) -> list:
    """Train every (seed, variant) not yet stored, seeds outermost, storing each at once."""
    import torch
    torch.set_num_threads(args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix='winwin_flow_curves_')
    settings = batch_settings(args)
    refuse_other_settings(store, [dict(r['settings'], iters=r['iters']) for r in results],
                          dict(settings, iters=iters))
    metric = TASKS[args.task]['metric']
    for seed in args.seeds:
        for variant in args.variants:
            key = run_key(args.task, variant, seed, iters)
            if is_stored(results, key):
                print(f'[curves] stored: {variant} seed {seed}', flush=True)
                continue
            t0 = time.perf_counter()
            points, cfg_info = run_one(args.task, variant, seed, args, work)
            results.append(dict(key, run_s=round(time.perf_counter() - t0, 1), points=points,
                                settings=dict(settings, **cfg_info)))
            results.sort(key=lambda r: (r['seed'], VARIANTS.index(r['variant'])))
            with open(store, 'w') as f:
                json.dump(results, f, indent=1)
            print(f'[curves] {args.task} | {label(variant)} | seed {seed}: ' + ', '.join(
                f'{p["iter"]}: {metric} {p[metric]:.3f} ({p["cpu_s"]:.0f} cpu s)'
                for p in points), flush=True)
    return results


def report(results: list[dict], out: str) -> str:
    """curves.md (curves, end of schedule, criterion) and the plot; returns the text."""
    task = results[0]['task']
    metric = TASKS[task]['metric']
    summary = summarise(results, metric)
    r0, st = results[0], results[0]['settings']
    line = (f'generated {task} 128x192, {r0["iters"]} iterations of batch '
            f'{st.get("batch_size", 4)}, validation every {st["val_every"]} on '
            f'{st["num_val"]} whole images, {st["threads"]} thread(s); {metric}: lower is better')
    text = write_table(summary, None, line, metric=metric, label_fn=label)
    variants = [v for v in VARIANTS if any(r['variant'] == v for r in results)]
    per_seed = ['', f'Per seed, end of schedule ({metric}, training CPU s):', '']
    for r in results:
        p = r['points'][-1]
        per_seed.append(f'- {label(r["variant"])}, seed {r["seed"]}: {p[metric]:.3f} '
                        f'({p["cpu_s"]:.0f} s)')
    for row in final_rows(results, task, variants, metric=metric, lower_is_better=True):
        per_seed.append(f'- {label(row["variant"])}, mean over seeds {row["seeds"]}: '
                        f'{row["mean"]:.3f} +- {row["std"]:.3f} ({row["time"]:.0f} s)')
    text += '\n'.join(per_seed) + (
        f'\n\n#### end of schedule ({metric}, lower is better)\n\n'
        + final_table(results, task, variants, label_fn=label, metric=metric,
                      lower_is_better=True)
        + f'\n\n#### criterion (each recipe vs full resolution; {metric} ratio = full / recipe)'
        '\n\n' + criterion_table(results, [task], metric=metric, lower_is_better=True,
                                 recipes=[v for v in variants if v != 'fullres'],
                                 label_fn=label, recipe_column=True) + '\n')
    with open(osp.join(out, 'curves.md'), 'w') as f:
        f.write(text)
    plot({metric: summary}, out, label_fn=label)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', default='flow', choices=list(TASKS))
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=None, help="default: the config's")
    parser.add_argument('--val-every', type=int, default=250)
    parser.add_argument('--num-train', type=int, default=256, help='generated training images')
    parser.add_argument('--num-val', type=int, default=8, help='generated validation images')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', required=True, help='folder for curves.json/.md and the PNG')
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    parser.add_argument('--plot-only', action='store_true',
                        help='re-draw the tables and the plot from OUT/curves.json')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    store = osp.join(args.out, 'curves.json')
    results = json.load(open(store)) if osp.exists(store) else []
    if not args.plot_only:
        from mmengine.config import Config
        iters = args.iters or Config.fromfile(osp.join(
            REPO_ROOT, TASKS[args.task]['configs']['fullres'])).train_cfg.max_iters
        results = run_batch(args, results, store, iters)
    print(report(results, args.out))


if __name__ == '__main__':
    main()
