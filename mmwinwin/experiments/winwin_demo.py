"""Win-Win in one command, on CPU, with no data to download.

1. generates a small high-resolution ADE20K-layout dataset (``--num-scenes 1``, the default:
   labels are local, the task where the recipe comes closest in the same-batch runs of
   docs/winwin.md; ``--num-scenes 2`` to ``4``: object classes depend on a scene beacon
   anywhere in the image, so the model must relate distant tokens);
2. trains a tiny RoPE ViT + FCN head with the Win-Win recipe of ``configs/winwin*``: 2 random
   windows of 6x6 tokens per 192x384 image (25 % of its tokens) for the first 5/6 of the
   iterations, whole images for the last 1/6 (``full_image_phase=dict(begin_fraction=5 / 6)``)
   with the phase's own learning rate (the windows' schedule decays to 0 at the phase, which
   restarts it: ``mmwinwin.engine.phase_restart_schedule``; docs/winwin.md);
   ``--windows-only`` trains on windows throughout (the paper's setting);
3. trains the same model at full resolution **for the same measured training time**: the
   Win-Win run's training CPU seconds (data loading excluded) are the full-resolution run's
   budget; its learning rate follows the same schedule over the share of the budget spent,
   and it stops at the budget (:class:`TimeBudgetHook`), so the two training times agree to
   half a step (printed);
4. evaluates both on the whole full-resolution validation images in one pass (mIoU), prints
   them side by side and, from the committed same-batch data, where Win-Win falls behind.

    python -m mmwinwin.experiments.winwin_demo            # about 4 minutes on 2 idle cores
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import statistics
import tempfile
import time

from mmengine.hooks import Hook

from .reproduction import RECIPE, build_cfg, phase_begin

#: the generated tasks of the same-batch runs and their scene counts (``winwin_curves``)
TASK_SCENES = {'local': 1, 'long': 2, 'long3': 3, 'long4': 4}
DEFAULT_ITERS = 1800
DEFAULT_SCENES = 1
_SKIP = 3  # first iterations of a run include start-up costs; left out of step medians


class ProgressHook(Hook):
    """One-line progress bar with loss and ETA; records per-iteration wall times."""

    priority = 'VERY_LOW'

    def __init__(self, title: str, show: bool = True, budget_s: float | None = None) -> None:
        self.title, self.show, self.times, self.cpu = title, show, [], []
        self.budget_s = budget_s  # a time budget (TimeBudgetHook): progress over the budget

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.times.append(time.perf_counter() - self._t0)
        self.cpu.append(time.process_time() - self._c0)
        if not self.show:
            return
        done, total = runner.iter + 1, runner.max_iters
        loss = float(outputs['loss']) if outputs and 'loss' in outputs else float('nan')
        if self.budget_s is not None:  # progress over the time budget, not the iterations
            share = min(1.0, sum(self.cpu) / self.budget_s)
            last = runner.train_loop.stop_training
            print(f'\r{self.title} [{"#" * int(30 * share):<30}] {done} it, {sum(self.cpu):.0f}/'
                  f'{self.budget_s:.0f} CPU s  loss {loss:.3f}', end='\n' if last else '',
                  flush=True)
            return
        eta = statistics.mean(self.times[-20:]) * (total - done)
        bar = '#' * int(30 * done / total)
        print(f'\r{self.title} [{bar:<30}] {done}/{total}  loss {loss:.3f}  eta {eta:4.0f}s',
              end='' if done < total else '\n', flush=True)


def run(cfg, title: str, show: bool = True, budget_s: float | None = None):
    """Train ``cfg`` (a Config) with mmengine's Runner, for ``budget_s`` training CPU seconds
    when given (:class:`TimeBudgetHook`); returns the runner and the :class:`ProgressHook`
    (per-iteration wall and CPU seconds)."""
    from mmengine.runner import Runner

    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    hook = ProgressHook(title, show, budget_s)
    if budget_s is not None:  # before the progress hook: it reads stop_training
        runner.register_hook(TimeBudgetHook(budget_s))
    runner.register_hook(hook)
    runner.train()
    return runner, hook


def median_step(times: list[float]) -> float:
    """Median seconds per iteration, start-up iterations left out when there are enough."""
    skip = min(_SKIP, max(len(times) - 3, 0))
    return statistics.median(times[skip:])


class TimeBudgetHook(Hook):
    """Train for a budget of training time instead of a number of iterations.

    Before every iteration the learning rate follows the experiment config's schedule
    (linear warm-up from 0.1x over the first 10 %, then linear decay to 0) over the
    *fraction of the budget spent* instead of the fraction of the iterations; training
    stops at the iteration that brings the spent time closest to the budget (the spent time
    counts the training steps as :class:`ProgressHook` does: process CPU seconds from before to
    after each iteration, data loading excluded). So the run's measured training time is the
    budget up to half a step."""

    priority = 'VERY_LOW'

    def __init__(self, budget_s: float, warmup: float = 0.1, start_factor: float = 0.1) -> None:
        self.budget_s, self.warmup, self.start_factor = budget_s, warmup, start_factor
        self.spent, self.steps = 0.0, []

    def lr_factor(self, frac: float) -> float:
        if frac < self.warmup:
            return self.start_factor + (1 - self.start_factor) * frac / self.warmup
        return max(0.0, 1 - (frac - self.warmup) / (1 - self.warmup))

    def before_train(self, runner) -> None:
        self.base_lr = [g['lr'] for g in runner.optim_wrapper.optimizer.param_groups]

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        f = self.lr_factor(min(1.0, self.spent / self.budget_s))
        for g, lr in zip(runner.optim_wrapper.optimizer.param_groups, self.base_lr):
            g['lr'] = lr * f
        self._t0 = time.process_time()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        step = time.process_time() - self._t0
        self.spent += step
        self.steps.append(step)
        typical = statistics.median(self.steps[-20:])
        if self.spent + typical / 2 >= self.budget_s:  # the next step would overshoot more
            runner.train_loop.stop_training = True


def equal_time_cfg(cfg, budget_s: float):
    """``cfg`` (full resolution) trained for ``budget_s`` training seconds: no iteration
    schedule (the :class:`TimeBudgetHook` schedules the learning rate over the budget and
    stops), no checkpoint."""
    cfg.param_scheduler = []
    cfg.train_cfg.update(max_iters=10 ** 7, val_interval=10 ** 7 + 1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=-1,
                                        save_last=False)
    return cfg


def falls_behind() -> str:
    """One line: where the recipe does not hold, from the committed same-batch data
    (docs/curves/same_batch/curves.json, docs/winwin.md)."""
    import json

    from . import REPO_ROOT
    from .comparison import criterion_rows
    path = osp.join(REPO_ROOT, 'docs', 'curves', 'same_batch', 'curves.json')
    if not osp.exists(path):
        return 'where it falls behind: see docs/winwin.md'
    with open(path) as f:
        results = json.load(f)
    tasks = sorted({r['task'] for r in results})
    failing = [r for r in criterion_rows(results, tasks, recipe=RECIPE) if not r['holds']]
    if not failing:
        return 'in the same-batch runs of docs/winwin.md the recipe holds on every task'
    parts = []
    for r in failing:
        if r['task'] not in TASK_SCENES:
            continue
        why = []
        if not r['equal_time']['holds']:
            why.append(f"below it at equal training time by up to {-r['equal_time']['worst']:.1f}"
                       ' mIoU')
        end_ = r['end']
        why.append(f"{end_['ratio']:.2f} of its mIoU at the end (per seed "
                   + ' / '.join(f'{x:.2f}' for x in end_['per_seed_ratio'])
                   + f") in {end_['time_ratio']:.2f} of its training time")
        parts.append(f"{r['task']} (--num-scenes {TASK_SCENES[r['task']]}): " + ', '.join(why))
    return ('where Win-Win falls short of full resolution (same-batch criterion, docs/winwin.md: '
            'never below at equal time, >= 0.9 in <= 0.5 of the time): ' + '; '.join(parts))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=DEFAULT_ITERS)
    parser.add_argument('--windows-only', action='store_true',
                        help="train on windows throughout (the paper's Win-Win; no whole-image "
                             'phase)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the equal-time full-resolution run')
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-scenes', type=int, default=DEFAULT_SCENES, choices=(1, 2, 3, 4),
                        help='scenes of the generated task: 1 = labels are local (default), '
                             '2-4 = an object\'s class depends on a scene beacon anywhere in '
                             'the image (context wider than a window)')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--work-dir', default=None)
    args = parser.parse_args(argv)
    logging.getLogger('py.warnings').setLevel(logging.ERROR)
    import warnings
    warnings.filterwarnings('ignore')

    import torch

    from mmwinwin.datasets.synthetic import generate_ade20k

    torch.set_num_threads(args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix='winwin_demo_')
    H, W = args.img_size
    total = (H // 16) * (W // 16)
    kept = 2 * args.window ** 2
    common = dict(data_root=None, img_size=(H, W), window=args.window, crop=0,
                  batch_size=args.batch_size, num_scenes=args.num_scenes)
    task = ('labels are local' if args.num_scenes == 1 else
            f'{args.num_scenes} scenes: object classes depend on a beacon anywhere in the image')
    print(f'[1/4] generating {args.num_train}+{args.num_val} images of {H}x{W} ({task}) in '
          f'{work}/data')
    common['data_root'] = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                                          num_val=args.num_val, img_size=(H, W),
                                          num_scenes=args.num_scenes, seed=0)
    variant = 'winwin' if args.windows_only else RECIPE
    begin = args.iters if args.windows_only else phase_begin(variant, args.iters)
    plan = (f'{args.iters} iterations' if args.windows_only else
            f'iterations 0-{begin - 1}, then whole images for iterations {begin}-{args.iters - 1}')
    print(f'[2/4] Win-Win training: 2 windows of {args.window}x{args.window} tokens = {kept} of '
          f'{total} tokens per image, {plan}, batch {args.batch_size}')
    cfg = build_cfg(variant, work_dir=osp.join(work, 'winwin'), iters=args.iters, **common)
    runner, ww = run(cfg, 'Win-Win')
    budget = sum(ww.cpu)
    rows = [('Win-Win' + ('' if args.windows_only else ' + whole-image phase'), runner.test(),
             ww, args.iters)]
    if not args.no_baseline:
        print(f'[3/4] full resolution for the same measured training time, {budget:.4g} CPU s '
              '(the learning-rate schedule over the time spent; stops at the budget)')
        full_cfg = equal_time_cfg(build_cfg('fullres', work_dir=osp.join(work, 'fullres'),
                                            iters=args.iters, **common), budget)
        full_runner, full = run(full_cfg, 'full-res', budget_s=budget)
        rows.append(('full resolution, same training time', full_runner.test(), full,
                     len(full.cpu)))
    print('[4/4] evaluated on the whole full-resolution validation images (one pass each)')

    print('\nResult (validation, whole images):')
    print(f'  {"run":<40} {"mIoU":>6} {"aAcc":>6} {"mAcc":>6} {"train CPU s":>11} '
          f'{"train wall s":>12} {"iterations":>10}')
    for name, m, hook, iters in rows:
        print(f'  {name:<40} {m["mIoU"]:6.2f} {m["aAcc"]:6.2f} {m["mAcc"]:6.2f} '
              f'{sum(hook.cpu):11.2f} {sum(hook.times):12.2f} {iters:10d}')
    if not args.no_baseline:
        ratio = sum(full.cpu) / budget
        print(f'  equal time: full resolution trained {ratio:.3f} of Win-Win\'s training time '
              f'({"within" if abs(ratio - 1) <= 0.05 else "NOT within"} 5 %)')
        window_step = median_step(ww.cpu[:begin])
        full_step = median_step(full.cpu)
        print(f'  step CPU time: Win-Win windows {window_step:.3f} s, full resolution '
              f'{full_step:.3f} s: {full_step / window_step:.2f}x cheaper per window iteration '
              f'({total / kept:.1f}x fewer tokens)')
    print(f'  {falls_behind()}')
    print(f'  checkpoint: {osp.join(work, "winwin", f"iter_{args.iters}.pth")}')


if __name__ == '__main__':
    main()
