"""Win-Win in one command, on CPU, with no data to download.

1. generates a small high-resolution ADE20K-layout dataset (object classes depend on a
   scene beacon anywhere in the image, so the model must relate distant tokens);
2. trains a tiny RoPE ViT + FCN head with the Win-Win recipe of ``configs/winwin*``: 2 random
   windows of 6x6 tokens per 192x384 image (25 % of its tokens) for the first 5/6 of the
   iterations, whole images for the last 1/6 (``full_image_phase=dict(begin_fraction=5 / 6)``,
   docs/winwin.md); ``--windows-only`` trains on windows throughout (the paper's setting);
3. evaluates on the whole full-resolution validation images in one pass (mIoU);
4. trains the same model at full resolution **for the same wall time** (as many iterations as
   fit in the Win-Win run's training time, at the full-resolution step time measured in the
   same process: the whole-image phase's steps, or a short probe with ``--windows-only``),
   evaluates it the same way and prints both results side by side.

    python -m mmwinwin.experiments.winwin_demo            # a few minutes on 2 cores
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import statistics
import tempfile
import time

from mmengine.hooks import Hook

from .reproduction import FULL_PHASE_FRACTION, build_cfg

_SKIP = 3  # first iterations of a run include start-up costs; left out of step medians


class ProgressHook(Hook):
    """One-line progress bar with loss and ETA; records per-iteration wall times."""

    priority = 'VERY_LOW'

    def __init__(self, title: str, show: bool = True) -> None:
        self.title, self.show, self.times = title, show, []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.times.append(time.perf_counter() - self._t0)
        if not self.show:
            return
        done, total = runner.iter + 1, runner.max_iters
        loss = float(outputs['loss']) if outputs and 'loss' in outputs else float('nan')
        eta = statistics.mean(self.times[-20:]) * (total - done)
        bar = '#' * int(30 * done / total)
        print(f'\r{self.title} [{bar:<30}] {done}/{total}  loss {loss:.3f}  eta {eta:4.0f}s',
              end='' if done < total else '\n', flush=True)


def run(cfg, title: str, show: bool = True):
    """Train ``cfg`` (a Config) with mmengine's Runner; returns the runner and per-iteration
    seconds."""
    from mmengine.runner import Runner

    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    hook = ProgressHook(title, show)
    runner.register_hook(hook)
    runner.train()
    return runner, hook.times


def median_step(times: list[float]) -> float:
    """Median seconds per iteration, start-up iterations left out when there are enough."""
    skip = min(_SKIP, max(len(times) - 3, 0))
    return statistics.median(times[skip:])


def equal_time_iters(budget_s: float, step_s: float) -> int:
    """Full-resolution iterations that fit in ``budget_s`` seconds of training."""
    return max(1, int(round(budget_s / step_s)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--windows-only', action='store_true',
                        help="train on windows throughout (the paper's Win-Win; no whole-image "
                             'phase)')
    parser.add_argument('--probe-iters', type=int, default=20,
                        help='full-resolution iterations timed with --windows-only')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the equal-time full-resolution run')
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-scenes', type=int, default=2)
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
    print(f'[1/5] generating {args.num_train}+{args.num_val} images of {H}x{W} in {work}/data')
    common['data_root'] = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                                          num_val=args.num_val, img_size=(H, W),
                                          num_scenes=args.num_scenes, seed=0)
    variant = 'winwin' if args.windows_only else 'winwin_ft'
    begin = args.iters if args.windows_only else \
        min(round(FULL_PHASE_FRACTION * args.iters), args.iters - 1)
    plan = (f'{args.iters} iterations' if args.windows_only else
            f'iterations 0-{begin - 1}, then whole images for iterations {begin}-{args.iters - 1}')
    print(f'[2/5] Win-Win training: 2 windows of {args.window}x{args.window} tokens = {kept} of '
          f'{total} tokens per image, {plan}, batch {args.batch_size}')
    cfg = build_cfg(variant, work_dir=osp.join(work, 'winwin'), iters=args.iters,
                    full_phase_begin=None if args.windows_only else begin, **common)
    runner, ww_times = run(cfg, 'Win-Win')
    ww_train_s = sum(ww_times)
    print('[3/5] evaluating on whole full-resolution images (one pass each)')
    metrics = runner.test()
    window_step = median_step(ww_times[:begin])
    if args.iters - begin >= 3:  # the phase's whole-image steps are full-resolution steps
        full_step, full_source = median_step(ww_times[begin:]), \
            f'median of the {args.iters - begin} whole-image steps above'
    else:
        print(f'[4/5] timing {args.probe_iters} full-resolution training iterations')
        probe = build_cfg('fullres', work_dir=osp.join(work, 'fullres_probe'),
                          iters=args.probe_iters, **common)
        _, probe_times = run(probe, 'full-res probe')
        full_step, full_source = median_step(probe_times), \
            f'median of a {args.probe_iters}-iteration probe'
    rows = [('Win-Win' + ('' if args.windows_only else ' + whole-image phase'), metrics,
             ww_train_s, args.iters)]
    if not args.no_baseline:
        n = equal_time_iters(ww_train_s, full_step)
        print(f'[4/5] full resolution for the same wall time: {ww_train_s:.4g} s / {full_step:.4g} '
              f's per step ({full_source}) = {n} iterations')
        full_cfg = build_cfg('fullres', work_dir=osp.join(work, 'fullres'), iters=n, **common)
        full_runner, full_times = run(full_cfg, 'full-res')
        print('[5/5] evaluating the full-resolution model on the same whole images')
        rows.append(('full resolution, same wall time', full_runner.test(), sum(full_times), n))

    print('\nResult (validation, whole images):')
    print(f'  {"run":<40} {"mIoU":>6} {"aAcc":>6} {"mAcc":>6} {"train s":>8} {"iterations":>10}')
    for name, m, secs, iters in rows:
        print(f'  {name:<40} {m["mIoU"]:6.2f} {m["aAcc"]:6.2f} {m["mAcc"]:6.2f} {secs:8.1f} '
              f'{iters:10d}')
    print(f'  step time: Win-Win windows {window_step:.3f} s, full resolution {full_step:.3f} s '
          f'({full_source}): {full_step / window_step:.2f}x cheaper per window iteration '
          f'({total / kept:.1f}x fewer tokens)')
    print(f'  checkpoint: {osp.join(work, "winwin", f"iter_{args.iters}.pth")}')


if __name__ == '__main__':
    main()
