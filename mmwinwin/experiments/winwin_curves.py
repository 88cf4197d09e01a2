"""Win-Win learning curves over seeds: validation mIoU against iterations and wall time.

Companion of ``tools/winwin_experiment.py`` (same data generator, models and configs): every
variant (Win-Win, full resolution, low-resolution crop, Win-Win with absolute positions) is
trained once per seed and *validated on the whole full-resolution images every
``--val-every`` iterations*, recording the iteration, the training wall time so far
(validation excluded) and the mIoU. A task is the generated dataset: ``long`` (object classes
depend on a scene beacon placed anywhere, 2 scenes) and ``local`` (1 scene: labels are local).

Writes under ``--out``: ``curves.json`` (every point), ``curves.md`` (mean +- std over seeds
at every validation point) and ``curves_<task>.png`` (matplotlib: mIoU against iterations and
against training seconds, mean with a min-max band per variant).

    PYTHONPATH=$PWD python tools/winwin_curves.py --tasks long local --seeds 0 1 2 \\
        --iters 1200 --val-every 200 --out docs/images/winwin_curves
    PYTHONPATH=$PWD python tools/winwin_curves.py --plot-only --out docs/images/winwin_curves

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
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from winwin_experiment import FULL_PHASE_FRACTION, VARIANTS, build_cfg  # noqa: E402

TASKS = {'long': dict(num_scenes=2), 'local': dict(num_scenes=1)}


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


class CurveRecorder:
    """An mmengine hook recording (iteration, training seconds, metrics) at every validation.

    ``metric_keys`` maps the stored name of each point's metric to the key the evaluator
    returns (default: mmseg's ``mIoU`` and ``aAcc``; ``tools/winwin_det_curves.py`` records
    mmdet's ``coco/bbox_mAP`` and ``coco/segm_mAP``).
    """

    priority = 'LOWEST'

    def __init__(self, metric_keys: dict[str, str] | None = None):
        from mmengine.hooks import Hook
        self._hook_cls = Hook
        self.metric_keys = metric_keys or {'mIoU': 'mIoU', 'aAcc': 'aAcc'}
        self.points: list[dict] = []
        self._t0 = self._paused = self._pause_start = 0.0
        self._c0 = self._cpaused = self._cpause_start = 0.0

    def as_hook(self):
        rec = self

        class _Hook(self._hook_cls):
            priority = 'LOWEST'

            def before_train(self, runner):
                rec._t0, rec._paused = time.perf_counter(), 0.0
                rec._c0, rec._cpaused = time.process_time(), 0.0

            def before_val_epoch(self, runner):
                rec._pause_start = time.perf_counter()
                rec._cpause_start = time.process_time()

            def after_val_epoch(self, runner, metrics=None):
                now, cnow = time.perf_counter(), time.process_time()
                train_s = rec._pause_start - rec._t0 - rec._paused
                cpu_s = rec._cpause_start - rec._c0 - rec._cpaused
                rec._paused += now - rec._pause_start
                rec._cpaused += cnow - rec._cpause_start
                rec.points.append(dict(
                    iter=runner.iter, train_s=train_s, cpu_s=cpu_s,
                    **{name: float((metrics or {}).get(key, float('nan')))
                       for name, key in rec.metric_keys.items()}))

        return _Hook()


def with_validation(cfg: dict, val_every: int) -> dict:
    """The experiment's config with whole-image validation every ``val_every`` iterations."""
    cfg = dict(cfg)
    cfg['train_cfg'] = dict(cfg['train_cfg'], val_interval=val_every)
    cfg['val_dataloader'] = cfg['test_dataloader']
    cfg['val_evaluator'] = dict(cfg['test_evaluator'], iou_metrics=['mIoU'])
    cfg['val_cfg'] = dict(type='ValLoop')
    cfg['log_level'] = 'WARNING'
    cfg['default_hooks'] = dict(cfg['default_hooks'],
                                checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                                interval=-1, save_last=False))
    return cfg


def run_one(variant: str, task: str, seed: int, args, work: str) -> list[dict]:
    import logging

    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmwinwin.utils import build_runner

    import mmwinwin  # noqa: F401
    from mmwinwin.datasets.synthetic import generate_ade20k

    H, W = args.img_size
    data = osp.join(work, f'data_{task}_seed{seed}')
    if not osp.isdir(data):
        generate_ade20k(data, num_train=args.num_train, num_val=args.num_val, img_size=(H, W),
                        num_scenes=TASKS[task]['num_scenes'], seed=seed)
    cfg = build_cfg(variant, data, osp.join(work, f'{task}_{variant}_seed{seed}'), (H, W),
                    args.window, args.crop, args.iters, args.batch_size, args.lr, seed,
                    log_interval=args.iters, num_scenes=TASKS[task]['num_scenes'],
                    context_pool=args.context_pool, full_phase_begin=args.full_phase_begin)
    runner = build_runner(Config(with_validation(cfg, args.val_every)))
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder()
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    return rec.points


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
    seconds. A ``*_ft``
    variant is measured in both phases (``<name>@windows`` before ``begin``,
    ``<name>@whole`` after) and its whole-run cost is their mix over the schedule.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmwinwin.datasets.synthetic import generate_ade20k
    from mmwinwin.utils import build_runner

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
                        full_phase_begin=args.full_phase_begin)
        cfg['log_level'] = 'WARNING'
        runner = build_runner(Config(cfg))  # the window transform gets the model's patch size
        optim = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
        loader = Runner.build_dataloader(runner._train_dataloader, seed=0)
        it = iter(loader)
        phases = [(None, None)]
        if variant.endswith('_ft'):
            phases = [('windows', 0), ('whole', args.full_phase_begin)]
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
    lines = [f'Step cost side by side ({args.img_size[0]}x{args.img_size[1]}, batch '
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
                mix = (b * costs[name][key] + (n - b) * costs[base + '@whole'][key]) / n
                share = f', {mix / full[key]:.2f} of full resolution over the run' \
                    if full.get(key) else ''
                lines.append(f'- {base} ({what}): {b} window steps + {n - b} whole-image steps '
                             f'= {mix:.1f} CPU ms per step on average{share}.')
    return '\n'.join(lines)


def summarise(results: list[dict], metric: str = 'mIoU') -> dict:
    """{(task, variant): {'iters', 'cpu_s' (mean), 'mean', 'std', 'min', 'max', 'seeds'}}
    of one metric, over the seeds (points up to the shortest run)."""
    out = {}
    # runs of several window sides (a sweep) are separate series, named <variant>_w<side>
    by_window = len({r.get('window') for r in results}) > 1

    def series(r):
        return f"{r['variant']}_w{r.get('window')}" if by_window else r['variant']
    for task in sorted({r['task'] for r in results}):
        for variant in dict.fromkeys(series(r) for r in results):
            runs = [r['points'] for r in results if r['task'] == task and series(r) == variant]
            if not runs:
                continue
            n = min(len(p) for p in runs)
            m = np.array([[p[i][metric] for i in range(n)] for p in runs])
            t = np.array([[p[i]['cpu_s'] for i in range(n)] for p in runs])
            out[(task, variant)] = dict(iters=[runs[0][i]['iter'] for i in range(n)],
                                        cpu_s=t.mean(0), mean=m.mean(0), std=m.std(0),
                                        min=m.min(0), max=m.max(0), seeds=len(runs))
    return out


def write_table(summary: dict, path: str | None, args_line: str, metric: str = 'mIoU',
                label_fn=None) -> str:
    """A markdown table per task (mean +- std over seeds at each validation point); written
    to ``path`` (unless None) and returned."""
    label_fn = label_fn or label
    lines = [f'Win-Win learning curves ({args_line}); {metric} mean +- std over seeds, '
             's = mean training CPU seconds at that point (one thread, data loading included, '
             'validation excluded; it depends far less on the load of the shared machine than '
             'wall time does)', '']
    for task in sorted({k[0] for k in summary}):
        lines += [f'#### task `{task}`', '',
                  '| variant | seeds | ' + ' | '.join(
                      f'{i} it' for i in summary[next(k for k in summary if k[0] == task)]['iters'])
                  + ' |']
        n_cols = len(summary[next(k for k in summary if k[0] == task)]['iters'])
        lines.append('|---|---:|' + '---:|' * n_cols)
        for (t, v), s in summary.items():
            if t != task:
                continue
            cells = [f'{mu:.1f} +- {sd:.1f} ({ts:.0f} s)'
                     for mu, sd, ts in zip(s['mean'], s['std'], s['cpu_s'])]
            lines.append(f'| {label_fn(v)} | {s["seeds"]} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    text = '\n'.join(lines)
    if path is not None:
        with open(path, 'w') as f:
            f.write(text + '\n')
    return text


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


def plot(summaries: dict, out: str, label_fn=None, prefix: str = 'curves',
         reference: dict | None = None) -> list[str]:
    """One PNG per task, ``{out}/{prefix}_{task}.png``: a row per metric of ``summaries``
    (metric name -> ``summarise`` output), the metric against iterations (left) and against
    training CPU seconds (right), mean with a min-max band per variant; ``reference``
    (stored curves, :func:`load_reference`) dashed on the first metric's row."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    label_fn = label_fn or label
    paths = []
    tasks = sorted({k[0] for summary in summaries.values() for k in summary})
    for task in tasks:
        fig, axes = plt.subplots(len(summaries), 2, figsize=(11, 5.5 * len(summaries)),
                                 squeeze=False)
        for r_i, (row, (metric, summary)) in enumerate(zip(axes, summaries.items())):
            for (t, v), s in summary.items():
                if t != task:
                    continue
                for ax, x in zip(row, (s['iters'], s['cpu_s'])):
                    ax.plot(x, s['mean'], marker='o', label=f'{label_fn(v)} ({s["seeds"]} seeds)')
                    ax.fill_between(x, s['min'], s['max'], alpha=0.2)
            for name, r in ((reference or {}).get(task, {}) if r_i == 0 else {}).items():
                for ax, x in zip(row, (r['iters'], r['cpu_s'])):
                    ax.errorbar(x, r['mean'], yerr=r['std'], linestyle='--', marker='s',
                                markersize=3, capsize=2, alpha=0.7,
                                label=f'{label_fn(name)} (stored, {r["seeds"]} seeds, +- std'
                                      + (f'; {r["note"]}' if r.get('note') else '') + ')')
            row[0].set_xlabel('training iterations')
            row[1].set_xlabel('training CPU seconds (1 thread, validation excluded)')
            for ax in row:
                ax.set_ylabel(f'whole-image val {metric}')
                ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc='lower center', ncol=2, fontsize=7)
        fig.suptitle(f'Win-Win vs full resolution, task "{task}" (mean, band = min..max)')
        legend_rows = (len(labels) + 1) // 2
        fig.tight_layout(rect=(0, (0.04 + 0.035 * legend_rows) / len(summaries), 1, 1))
        path = osp.join(out, f'{prefix}_{task}.png')
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
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
    args = parser.parse_args()
    if args.full_phase_begin is None:
        args.full_phase_begin = round(FULL_PHASE_FRACTION * args.iters)
    os.makedirs(args.out, exist_ok=True)
    if args.step_cost:
        import torch
        torch.set_num_threads(args.threads)
        work = args.work_dir or tempfile.mkdtemp(prefix='winwin_curves_')
        costs = step_costs(args.variants, args.tasks[0], args, work)
        with open(osp.join(args.out, 'step_costs.json'), 'w') as f:
            json.dump(costs, f, indent=1)
        text = step_cost_table(costs, args)
        with open(osp.join(args.out, 'step_costs.md'), 'w') as f:
            f.write(text + '\n')
        print(text)
        return
    store = osp.join(args.out, 'curves.json')
    results = json.load(open(store)) if osp.exists(store) else []
    if not args.plot_only:
        import torch
        torch.set_num_threads(args.threads)
        work = args.work_dir or tempfile.mkdtemp(prefix='winwin_curves_')
        for seed in args.seeds:
            for task in args.tasks:
                for variant in args.variants:
                    key = dict(task=task, variant=run_name(variant, args.context_pool,
                                                           args.full_phase_begin),
                               seed=seed, iters=args.iters,
                               img_size=list(args.img_size), window=args.window)
                    if any(all(r.get(k) == v for k, v in key.items()) for r in results):
                        continue  # already measured: the run is resumable
                    print(f'[curves] task {task} | {label(key["variant"])} | seed {seed}',
                          flush=True)
                    pts = run_one(variant, task, seed, args, work)
                    results.append(dict(key, points=pts))
                    with open(store, 'w') as f:
                        json.dump(results, f, indent=1)
                    print('[curves]   ' + ', '.join(f'{p["iter"]}: {p["mIoU"]:.1f} '
                                                   f'({p["cpu_s"]:.0f} cpu s)' for p in pts),
                          flush=True)
    summary = summarise(results)
    line = (f'{args.img_size[0]}x{args.img_size[1]} images, window {args.window}, '
            f'batch {args.batch_size}, {args.threads} thread(s)')
    text = write_table(summary, osp.join(args.out, 'curves.md'), line)
    reference = load_reference(args.reference)
    ref_text = reference_table(reference, sorted({k[0] for k in summary}))
    if ref_text:
        text += '\n' + ref_text
        with open(osp.join(args.out, 'curves.md'), 'a') as f:
            f.write(ref_text + '\n')
    print(text)
    for p in plot({'mIoU': summary}, args.out, reference=reference):
        print('[curves] wrote', p)


if __name__ == '__main__':
    main()
