"""Win-Win learning curves over seeds: validation mIoU against iterations and wall time.

Companion of ``mmwinwin.experiments.winwin_reproduction`` (same data generator, models and
configs, ``mmwinwin.experiments.reproduction``): every
variant (Win-Win, full resolution, low-resolution crop, Win-Win with absolute positions) is
trained once per seed and *validated on the whole full-resolution images every
``--val-every`` iterations*, recording the iteration, the training wall time so far
(validation excluded) and the mIoU. A task is the generated dataset: ``long`` (object classes
depend on a scene beacon placed anywhere, 2 scenes) and ``local`` (1 scene: labels are local).

Writes under ``--out``: ``curves.json`` (every point), ``curves.md`` (mean +- std over seeds
at every validation point) and ``curves_<task>.png`` (matplotlib: mIoU against iterations and
against training seconds, mean with a min-max band per variant).

    python -m mmwinwin.experiments.winwin_curves --tasks long local --seeds 0 1 2 \\
        --iters 1200 --val-every 200 --out docs/images/winwin_curves
    python -m mmwinwin.experiments.winwin_curves --plot-only --out docs/images/winwin_curves

Variants ``winwin_ft`` / ``winwin_ctx_ft`` end Win-Win training (without / with context tokens)
with whole images from ``--full-phase-begin`` on (the models' ``full_image_phase`` option);
``--reference docs/winwin_curves_stored.json`` draws earlier runs' stored curves beside
these; ``--step-cost`` measures the variants' training cost per step side by side instead.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import re
import tempfile
import time

import numpy as np

from .curves import (CurveRecorder, is_stored, plot, refuse_other_settings, summarise,
                     write_table)
from .reproduction import FULL_PHASE_FRACTION, MIX_EVERY, VARIANTS, build_cfg, phase_begin

#: the generated tasks: ``local`` (1 scene: labels are local), ``long`` (2 scenes: an object's
#: class depends on a scene beacon anywhere in the image), ``long3`` / ``long4`` (3 / 4 scenes)
TASKS = {'long': dict(num_scenes=2), 'local': dict(num_scenes=1), 'long3': dict(num_scenes=3),
         'long4': dict(num_scenes=4)}


def run_name(variant: str, context_pool: int, full_phase_begin: int | None = None) -> str:
    """The stored name of a run: the variant, with the context pool when it is not the
    default (``winwin_ctx_p2``) and the first whole-image iteration of the full-image-phase
    variants when given (``winwin_ft_b2000``)."""
    name = variant
    if variant.startswith('winwin_ctx') and context_pool != 4:
        name += f'_p{context_pool}'
    if variant.endswith('_ft') and full_phase_begin is not None:
        name += f'_b{full_phase_begin}'
    return name


def label(name: str) -> str:
    base, extra = name, []
    m = re.fullmatch(r'(.+)_w(\d+)', base)  # a series of one window side (summarise)
    if m:
        base, side = m.groups()
        extra.append(f'window {side}x{side}')
    if '_b' in base:
        base, begin = base.rsplit('_b', 1)
        extra.append(f'from it {begin}')
    pool = 4
    if '_p' in base:
        base, pool = base.rsplit('_p', 1)
    if base.startswith('winwin_ctx'):
        extra.insert(0, f'pool {pool}')
    return VARIANTS[base] + (f' ({", ".join(extra)})' if extra else '')


def with_validation(cfg, val_every: int):
    """The experiment's config (changed in place and returned) with whole-image validation
    every ``val_every`` iterations and no checkpoints."""
    cfg.train_cfg.val_interval = val_every
    cfg.val_dataloader = cfg.test_dataloader
    cfg.val_evaluator = dict(cfg.test_evaluator, iou_metrics=['mIoU'])
    cfg.val_cfg = dict(type='ValLoop')
    cfg.log_level = 'WARNING'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=-1,
                                        save_last=False)
    return cfg


def run_one(variant: str, task: str, seed: int, args, work: str) -> list[dict]:
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from mmwinwin.datasets.synthetic import generate_ade20k

    H, W = args.img_size
    data = osp.join(work, f'data_{task}_seed{seed}')
    if not osp.isdir(data):
        generate_ade20k(data, num_train=args.num_train, num_val=args.num_val, img_size=(H, W),
                        num_scenes=TASKS[task]['num_scenes'], seed=seed)
    cfg = build_cfg(variant, data, osp.join(work, f'{task}_{variant}_seed{seed}'), (H, W),
                    args.window, args.crop, args.iters, args.batch_size, args.lr, seed,
                    log_interval=args.iters, num_scenes=TASKS[task]['num_scenes'],
                    context_pool=args.context_pool, full_phase_begin=args.full_phase_begin,
                    patch_size=args.patch_size)
    runner = Runner.from_cfg(with_validation(cfg, args.val_every))
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder()
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    return rec.points


def _run_key(args, task: str, variant: str, seed: int) -> dict:
    """What identifies one run in ``curves.json`` (a resumed invocation skips stored runs)."""
    return dict(task=task, variant=run_name(variant, args.context_pool, args.full_phase_begin),
                seed=seed, iters=args.iters, img_size=list(args.img_size), window=args.window)


def _worker_init(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _run_unit(unit):
    variant, task, seed, args, work = unit
    t0 = time.perf_counter()
    points = run_one(variant, task, seed, args, work)
    return unit[:3], points, time.perf_counter() - t0


def run_batch(args, results: list, store: str) -> list:
    """Train every (task, variant, seed) not yet in ``results``, ``--jobs`` runs side by side
    (separate processes at ``--threads`` threads each), and store each finished run in
    ``store`` at once (with its settings: config file, batch, lr, validation schedule), so an
    interrupted batch resumes where it stopped. Every run of the batch shares the seeds, the
    data of its (task, seed) and the validation schedule; validation leaves the training
    RNG alone (the config's ``RNGStateHook``)."""
    import torch

    from mmwinwin.datasets.synthetic import generate_ade20k

    from .reproduction import CONFIG
    work = args.work_dir or tempfile.mkdtemp(prefix='winwin_curves_')
    order = {v: i for i, v in enumerate(VARIANTS)}
    units = []
    for seed in args.seeds:  # seeds outermost: a partial batch has whole seeds
        for task in args.tasks:
            for variant in args.variants:
                if not is_stored(results, _run_key(args, task, variant, seed)):
                    units.append((variant, task, seed, args, work))
    for _, task, seed, _, _ in units:  # the data first, so parallel runs never write it
        data = osp.join(work, f'data_{task}_seed{seed}')
        if not osp.isdir(data):
            generate_ade20k(data, num_train=args.num_train, num_val=args.num_val,
                            img_size=tuple(args.img_size),
                            num_scenes=TASKS[task]['num_scenes'], seed=seed)
    settings = dict(config='/'.join(CONFIG), batch_size=args.batch_size, lr=args.lr,
                    val_every=args.val_every, threads=args.threads, jobs=args.jobs,
                    num_train=args.num_train, num_val=args.num_val, crop=args.crop,
                    context_pool=args.context_pool, full_phase_begin=args.full_phase_begin,
                    patch_size=args.patch_size)  # (older stores, which lack it, are patch 16)

    # one batch: a resumed invocation must train as the stored runs did
    refuse_other_settings(store, results, dict(settings, iters=args.iters,
                                               img_size=list(args.img_size),
                                               window=args.window))

    def store_run(unit_key, points, seconds):
        variant, task, seed = unit_key
        key = _run_key(args, task, variant, seed)
        results.append(dict(key, **settings, run_s=round(seconds, 1), points=points))
        results.sort(key=lambda r: (r['task'], order.get(r['variant'].split('_b')[0], 99),
                                    r['variant'], r['seed']))
        with open(store, 'w') as f:
            json.dump(results, f, indent=1)
        print(f'[curves] task {task} | {label(key["variant"])} | seed {seed}: ' + ', '.join(
            f'{p["iter"]}: {p["mIoU"]:.1f} ({p["cpu_s"]:.0f} cpu s)' for p in points),
            flush=True)

    print(f'[curves] {len(units)} runs to do, {args.jobs} side by side', flush=True)
    if args.jobs <= 1:
        torch.set_num_threads(args.threads)
        for unit in units:
            store_run(*_run_unit(unit))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context('spawn'),
                             initializer=_worker_init, initargs=(args.threads,)) as pool:
        futures = {pool.submit(_run_unit, u): u for u in units}
        failed = []
        for fut in as_completed(futures):  # a failed run does not lose the finished ones
            try:
                store_run(*fut.result())
            except Exception as err:  # noqa: BLE001 (reported together below)
                variant, task, seed = futures[fut][:3]
                failed.append(f'task {task} | {variant} | seed {seed}: '
                              f'{type(err).__name__}: {err}')
                print(f'[curves] FAILED {failed[-1]}', flush=True)
    if failed:
        raise RuntimeError(f'{len(failed)} of {len(units)} runs failed (the others are stored in '
                           f'{store}; rerun the command to retry only these):\n  '
                           + '\n  '.join(failed))
    return results


def step_costs(variants: list[str], task: str, args, work: str) -> dict:
    """Training cost per step of every variant's model, built side by side in one process.

    Each model gets the experiment's real config (mmengine Runner: model, AdamW optim
    wrapper, training dataloader of the seed-0 data of ``task``, ``num_workers=0``); the models
    take turns, each round fetching one batch from its own dataloader (decoding, the training
    pipeline with the window transform, collation) and running one ``model.train_step`` (data
    preprocessor, loss, backward, AdamW step), so a change of the machine's load hits all of
    them alike. Per variant: the median over ``--step-cost-steps`` rounds after 5 warm-up
    rounds of the CPU seconds (``time.process_time``, 1 thread) of the step, of the batch
    fetch and of both (the training time a run pays per iteration), and the step's wall
    seconds. A ``*_ft`` (and ``winwin_mix``)
    variant is measured in both kinds of step (``<name>@windows`` before ``begin``,
    ``<name>@whole`` after) and its whole-run cost is their mix over the schedule.
    """
    from mmengine.runner import Runner

    from mmwinwin.datasets.synthetic import generate_ade20k

    H, W = args.img_size
    data = osp.join(work, f'data_{task}_seed0')
    if not osp.isdir(data):
        generate_ade20k(data, num_train=args.num_train, num_val=args.num_val, img_size=(H, W),
                        num_scenes=TASKS[task]['num_scenes'], seed=0)
    runs = {}  # name -> (model, optim wrapper, batches, iteration to set or None)
    for variant in variants:
        cfg = build_cfg(variant, data, osp.join(work, f'stepcost_{variant}'), (H, W),
                        args.window, args.crop, args.iters, args.batch_size, args.lr, 0,
                        num_scenes=TASKS[task]['num_scenes'], context_pool=args.context_pool,
                        full_phase_begin=args.full_phase_begin, patch_size=args.patch_size)
        cfg.log_level = 'WARNING'
        runner = Runner.from_cfg(cfg)
        optim = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
        loader = Runner.build_dataloader(runner._train_dataloader, seed=0)
        it = iter(loader)
        phases = [(None, None)]
        begin = phase_begin(variant, args.iters, args.full_phase_begin)
        if begin is not None:
            phases = [('windows', 0), ('whole', begin)]
        elif variant == 'winwin_mix':  # whole images every MIX_EVERY-th iteration
            phases = [('windows', 0), ('whole', MIX_EVERY - 1)]
        for phase, at in phases:
            name = run_name(variant, args.context_pool, args.full_phase_begin) + (
                f'@{phase}' if phase else '')
            runs[name] = (runner.model, optim, it, at)
    cpu = {n: [] for n in runs}
    load = {n: [] for n in runs}
    wall = {n: [] for n in runs}
    for r in range(5 + args.step_cost_steps):
        for name, (model, optim, it, at) in runs.items():
            if at is not None:
                model.set_train_progress(at, args.iters)
            c_load = time.process_time()
            batch = next(it)
            c0, t0 = time.process_time(), time.perf_counter()
            model.train_step(batch, optim)
            c1, t1 = time.process_time(), time.perf_counter()
            if r >= 5:
                cpu[name].append(c1 - c0)
                load[name].append(c0 - c_load)
                wall[name].append(t1 - t0)
    return {n: dict(cpu_ms=1e3 * float(np.median(cpu[n])),
                    load_ms=1e3 * float(np.median(load[n])),
                    total_ms=1e3 * float(np.median(np.add(cpu[n], load[n]))),
                    wall_ms=1e3 * float(np.median(wall[n])), steps=len(cpu[n])) for n in runs}


def step_cost_table(costs: dict, args) -> str:
    """Markdown table of :func:`step_costs`, relative to full resolution, with the whole-run
    cost of each full-image-phase variant (its two phases mixed over ``--iters``)."""
    full = costs.get('fullres', {})
    p = getattr(args, 'patch_size', 16)  # (older stores: the config's 16)
    patch = f', patch {p}, windows of {args.window}x{args.window} tokens' if p != 16 else ''
    lines = [f'Step cost side by side ({args.img_size[0]}x{args.img_size[1]}{patch}, batch '
             f'{args.batch_size}, {args.threads} thread(s), median of {args.step_cost_steps} '
             f'rounds after 5 warm-up; CPU ms = process CPU time of one train_step, of one '
             f'batch fetch from the dataloader, and of both)', '',
             '| model | step CPU ms | batch fetch CPU ms | step + fetch CPU ms | step wall ms '
             '| step / full resolution | step + fetch / full resolution |',
             '|---|---:|---:|---:|---:|---:|---:|']

    def rel(c, key):
        return f'{c[key] / full[key]:.2f}' if full.get(key) else '-'
    for name, c in costs.items():
        lines.append(f'| {name} | {c["cpu_ms"]:.1f} | {c.get("load_ms", float("nan")):.1f} | '
                     f'{c.get("total_ms", float("nan")):.1f} | {c["wall_ms"]:.1f} | '
                     f'{rel(c, "cpu_ms")} | {rel(c, "total_ms")} |')
    lines.append('')
    b, n = args.full_phase_begin, args.iters
    for name in costs:
        if name.endswith('@windows'):
            base = name[:-len('@windows')]
            for key, what in (('cpu_ms', 'train_step'), ('total_ms', 'train_step + batch fetch')):
                if key not in costs[name]:
                    continue
                b = n - n // MIX_EVERY if base == 'winwin_mix' else \
                    phase_begin(base.split('_b')[0], n, args.full_phase_begin)
                mix = (b * costs[name][key] + (n - b) * costs[base + '@whole'][key]) / n
                share = f', {mix / full[key]:.2f} of full resolution over the run' \
                    if full.get(key) else ''
                lines.append(f'- {base} ({what}): {b} window steps + {n - b} whole-image steps '
                             f'= {mix:.1f} CPU ms per step on average{share}.')
    return '\n'.join(lines)


def load_reference(path: str | None) -> dict:
    """Stored curves of earlier runs (``{task: {run name: {iters, cpu_s, mean, std, seeds}}}``,
    e.g. ``docs/winwin_curves_stored.json``, copied from the tables of docs/winwin.md),
    drawn dashed beside this run's curves; their raw points are not stored, so no band."""
    if not path:
        return {}
    with open(path) as f:
        ref = json.load(f)
    note = ref.get('label_note', '')
    return {k: {n: dict(r, note=note) for n, r in v.items()}
            for k, v in ref.items() if isinstance(v, dict)}


def reference_table(reference: dict, tasks) -> str:
    lines = []
    for task in tasks:
        for name, r in reference.get(task, {}).items():
            cells = ', '.join(f'{i} it: {m:.1f} +- {sd:.1f} ({t:.0f} s)'
                              for i, m, sd, t in zip(r['iters'], r['mean'], r['std'], r['cpu_s']))
            lines.append(f'- stored, task `{task}`, {label(name)} ({r["seeds"]} seeds): {cells}')
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', nargs='+', default=['long', 'local'], choices=list(TASKS))
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1200)
    parser.add_argument('--val-every', type=int, default=200)
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=6)
    parser.add_argument('--crop', type=int, default=144)
    parser.add_argument('--patch-size', type=int, default=16,
                        help="the backbone's patch size in pixels (--window counts tokens of "
                             'this size); 8 gives 4x the tokens of the same image, and a '
                             'window step at 0.16 of a whole-image step, as at ViT-B on '
                             'high-resolution images')
    parser.add_argument('--context-pool', type=int, default=4,
                        help='pool side (tokens) of the context tokens of variants winwin_ctx*')
    parser.add_argument('--full-phase-begin', type=int, default=None,
                        help='first whole-image iteration of variants winwin_ft / winwin_ctx_ft '
                             '(default: 5/6 of --iters)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs side by side, each in its own process at --threads threads')
    parser.add_argument('--out', required=True, help='folder for curves.json/.md and PNGs')
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    parser.add_argument('--plot-only', action='store_true',
                        help='re-draw the table and plots from OUT/curves.json')
    parser.add_argument('--reference', default=None,
                        help='JSON of stored curves drawn dashed beside these (e.g. '
                             'docs/winwin_curves_stored.json)')
    parser.add_argument('--step-cost', action='store_true',
                        help='instead of curves: the training cost per step of --variants, '
                             'built side by side in one process (first --tasks); writes '
                             'OUT/step_costs.json and .md')
    parser.add_argument('--step-cost-steps', type=int, default=20)
    args = parser.parse_args(argv)
    if args.full_phase_begin is None:
        args.full_phase_begin = round(FULL_PHASE_FRACTION * args.iters)
    os.makedirs(args.out, exist_ok=True)
    if args.step_cost:
        import torch
        torch.set_num_threads(args.threads)
        work = args.work_dir or tempfile.mkdtemp(prefix='winwin_curves_')
        costs = step_costs(args.variants, args.tasks[0], args, work)
        settings = dict(task=args.tasks[0], img_size=list(args.img_size),
                        batch_size=args.batch_size, threads=args.threads, iters=args.iters,
                        step_cost_steps=args.step_cost_steps,
                        full_phase_begin=args.full_phase_begin, patch_size=args.patch_size,
                        window=args.window)
        with open(osp.join(args.out, 'step_costs.json'), 'w') as f:  # the table's inputs
            json.dump(dict(costs, _settings=settings), f, indent=1)
        text = step_cost_table(costs, args)
        with open(osp.join(args.out, 'step_costs.md'), 'w') as f:
            f.write(text + '\n')
        print(text)
        return
    store = osp.join(args.out, 'curves.json')
    results = json.load(open(store)) if osp.exists(store) else []
    if not args.plot_only:
        results = run_batch(args, results, store)
    summary = summarise(results)
    line = (f'{args.img_size[0]}x{args.img_size[1]} images, window {args.window}, '
            f'batch {args.batch_size}, {args.threads} thread(s)')
    text = write_table(summary, osp.join(args.out, 'curves.md'), line, label_fn=label)
    reference = load_reference(args.reference)
    ref_text = reference_table(reference, sorted({k[0] for k in summary}))
    if ref_text:
        text += '\n' + ref_text
        with open(osp.join(args.out, 'curves.md'), 'a') as f:
            f.write(ref_text + '\n')
    print(text)
    for p in plot({'mIoU': summary}, args.out, label_fn=label, reference=reference):
        print('[curves] wrote', p)


if __name__ == '__main__':
    main()
