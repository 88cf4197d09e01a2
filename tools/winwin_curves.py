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
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from winwin_experiment import VARIANTS, build_cfg  # noqa: E402

TASKS = {'long': dict(num_scenes=2), 'local': dict(num_scenes=1)}


def run_name(variant: str, context_pool: int) -> str:
    """The stored name of a run: the variant, with the context pool when it is not the
    default (``winwin_ctx_p2``)."""
    return f'{variant}_p{context_pool}' if variant == 'winwin_ctx' and context_pool != 4 \
        else variant


def label(name: str) -> str:
    if name.startswith('winwin_ctx'):
        pool = name.rsplit('_p', 1)[1] if name.startswith('winwin_ctx_p') else 4
        return f'{VARIANTS["winwin_ctx"]} (pool {pool})'
    return VARIANTS[name]


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
    from mmengine.runner import Runner

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
                    context_pool=args.context_pool)
    runner = Runner.from_cfg(Config(with_validation(cfg, args.val_every)))
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder()
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    return rec.points


def summarise(results: list[dict], metric: str = 'mIoU') -> dict:
    """{(task, variant): {'iters', 'cpu_s' (mean), 'mean', 'std', 'min', 'max', 'seeds'}}
    of one metric, over the seeds (points up to the shortest run)."""
    out = {}
    for task in sorted({r['task'] for r in results}):
        for variant in dict.fromkeys(r['variant'] for r in results):
            runs = [r['points'] for r in results if r['task'] == task and r['variant'] == variant]
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


def plot(summaries: dict, out: str, label_fn=None, prefix: str = 'curves') -> list[str]:
    """One PNG per task, ``{out}/{prefix}_{task}.png``: a row per metric of ``summaries``
    (metric name -> ``summarise`` output), the metric against iterations (left) and against
    training CPU seconds (right), mean with a min-max band per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    label_fn = label_fn or label
    paths = []
    tasks = sorted({k[0] for summary in summaries.values() for k in summary})
    for task in tasks:
        fig, axes = plt.subplots(len(summaries), 2, figsize=(11, 4 * len(summaries)),
                                 squeeze=False)
        for row, (metric, summary) in zip(axes, summaries.items()):
            for (t, v), s in summary.items():
                if t != task:
                    continue
                for ax, x in zip(row, (s['iters'], s['cpu_s'])):
                    ax.plot(x, s['mean'], marker='o', label=f'{label_fn(v)} ({s["seeds"]} seeds)')
                    ax.fill_between(x, s['min'], s['max'], alpha=0.2)
            row[0].set_xlabel('training iterations')
            row[1].set_xlabel('training CPU seconds (1 thread; about the wall time on an idle '
                              'core)')
            for ax in row:
                ax.set_ylabel(f'whole-image val {metric}')
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f'Win-Win vs full resolution, task "{task}" (mean, band = min..max)')
        fig.tight_layout()
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
                        help='pool side (tokens) of the context tokens of variant winwin_ctx')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', required=True, help='folder for curves.json/.md and PNGs')
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    parser.add_argument('--plot-only', action='store_true',
                        help='re-draw the table and plots from OUT/curves.json')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    store = osp.join(args.out, 'curves.json')
    results = json.load(open(store)) if osp.exists(store) else []
    if not args.plot_only:
        import torch
        torch.set_num_threads(args.threads)
        work = args.work_dir or tempfile.mkdtemp(prefix='winwin_curves_')
        for seed in args.seeds:
            for task in args.tasks:
                for variant in args.variants:
                    key = dict(task=task, variant=run_name(variant, args.context_pool),
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
    print(write_table(summary, osp.join(args.out, 'curves.md'), line))
    for p in plot({'mIoU': summary}, args.out):
        print('[curves] wrote', p)


if __name__ == '__main__':
    main()
