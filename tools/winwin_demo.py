"""Win-Win in one command, on CPU, with no data to download.

1. generates a small high-resolution ADE20K-layout dataset (object classes depend on a
   scene beacon anywhere in the image, so the model must relate distant tokens);
2. trains a tiny RoPE ViT + FCN head with Win-Win (2 random windows of 6x6 tokens per
   192x384 image, 25 % of its tokens), showing a progress bar;
3. evaluates on the whole full-resolution validation images in one pass (mIoU);
4. times a few full-resolution training iterations of the same model and prints the
   training-cost ratio.

    PYTHONPATH=$PWD python tools/winwin_demo.py            # a few minutes on 2 cores
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from mmengine.hooks import Hook  # noqa: E402

from winwin_experiment import build_cfg  # noqa: E402


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


def run(cfg: dict, title: str, show: bool = True):
    from mmengine.config import Config
    from mmwinwin.utils import build_runner

    import mmwinwin  # noqa: F401

    cfg = dict(cfg, log_level='WARNING')
    runner = build_runner(Config(cfg))
    hook = ProgressHook(title, show)
    runner.register_hook(hook)
    runner.train()
    return runner, hook.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--probe-iters', type=int, default=20,
                        help='full-resolution iterations timed for the cost ratio')
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-scenes', type=int, default=2)
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--work-dir', default=None)
    args = parser.parse_args()
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
    print(f'[1/4] generating {args.num_train}+{args.num_val} images of {H}x{W} in {work}/data')
    data = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                           num_val=args.num_val, img_size=(H, W), num_scenes=args.num_scenes,
                           seed=0)
    print(f'[2/4] Win-Win training: 2 windows of {args.window}x{args.window} tokens = {kept} of '
          f'{total} tokens per image, {args.iters} iterations x batch {args.batch_size}')
    cfg = build_cfg('winwin', data, osp.join(work, 'winwin'), (H, W), args.window, 0, args.iters,
                    args.batch_size, num_scenes=args.num_scenes)
    t0 = time.perf_counter()
    runner, ww_times = run(cfg, 'Win-Win')
    train_s = time.perf_counter() - t0
    print('[3/4] evaluating on whole full-resolution images (one pass each)')
    metrics = runner.test()
    print(f'[4/4] timing {args.probe_iters} full-resolution training iterations of the same model')
    probe = build_cfg('fullres', data, osp.join(work, 'fullres_probe'), (H, W), args.window, 0,
                      args.probe_iters, args.batch_size, num_scenes=args.num_scenes)
    _, full_times = run(probe, 'full-res', show=True)
    skip = min(3, len(full_times) - 1)  # first iterations include start-up costs
    ww = statistics.median(ww_times[skip:])
    full = statistics.median(full_times[skip:])
    print('\nResult (validation, whole images):')
    print(f'  mIoU {metrics["mIoU"]:.2f}   aAcc {metrics["aAcc"]:.2f}   mAcc {metrics["mAcc"]:.2f}')
    print(f'  Win-Win training: {train_s:.0f} s for {args.iters} iterations '
          f'({ww:.3f} s/iter, median)')
    print(f'  full-resolution training: {full:.3f} s/iter (median of {len(full_times) - skip})')
    print(f'  training-cost ratio: {full / ww:.2f}x cheaper per iteration with Win-Win '
          f'({total / kept:.1f}x fewer tokens)')
    print(f'  checkpoint: {osp.join(work, "winwin", f"iter_{args.iters}.pth")}')


if __name__ == '__main__':
    main()
