"""Kill a training run at random moments, resume it each time, compare with an uninterrupted run.

    python tools/analysis_tools/fault_injection.py [--kills 20] [--seed 0] [--work-dir DIR]
        [--max-iters 48] [--window 0.6] [--sigterm-every 0]

Trains the tiny Win-Win segmentation config (full-image phase on, 2 dataloader workers, a
checkpoint every 2 iterations) on generated data: once straight through, then again while
SIGKILLing the whole process group ``--kills`` times at random moments -- up to ``--window``
seconds after each attempt's first logged iteration, so faults land in iterations, the
full-image phase (the last 1/6) and checkpoint writes alike -- resuming with ``tools/train.py --resume`` (no path) after each.
Every ``--sigterm-every``-th fault is a SIGTERM instead (the run must then exit 0). Prints
each fault (when, what was on disk) and whether the final weights, buffers and optimizer
state equal the uninterrupted run's bit for bit (exit status 0 if so).
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/winwin/winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kills', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-iters', type=int, default=48)
    parser.add_argument('--window', type=float, default=0.6,
                        help='a fault lands up to this many seconds after the first logged '
                             'iteration of each attempt')
    parser.add_argument('--sigterm-every', type=int, default=0,
                        help='every N-th fault is a SIGTERM (0: SIGKILL only)')
    parser.add_argument('--work-dir', default=None)
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    import torch

    from mmwinwin.datasets.synthetic import generate_ade20k

    base = args.work_dir or tempfile.mkdtemp(prefix='fault_injection_')
    root = generate_ade20k(osp.join(base, 'data'), num_train=4, num_val=1, img_size=(128, 256))
    opts = ['--cfg-options', *[f'{s}_dataloader.dataset.data_root={root}'
                               for s in ('train', 'val', 'test')],
            'randomness.seed=0', 'randomness.deterministic=True',
            f'train_cfg.max_iters={args.max_iters}', f'train_cfg.val_interval={args.max_iters}',
            f'param_scheduler.0.end={args.max_iters}', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'train_dataloader.num_workers=2']
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.setdefault('OMP_NUM_THREADS', '1')

    def start(work: str, resume: bool) -> subprocess.Popen:
        cmd = [sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, *opts]
        return subprocess.Popen(cmd + (['--resume'] if resume else []), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    straight = osp.join(base, 'straight')
    t0 = time.monotonic()
    if start(straight, False).wait() != 0:
        print('the uninterrupted run failed')
        return 2
    duration = time.monotonic() - t0
    print(f'uninterrupted run: {duration:.1f} s')

    rng = random.Random(args.seed)
    faulty = osp.join(base, 'faulty')
    final = osp.join(faulty, f'iter_{args.max_iters}.pth')
    faults, attempts = 0, 0

    def training_started(since: float) -> bool:
        logs = [p for p in glob.glob(osp.join(faulty, '*', '*.log')) if osp.getmtime(p) >= since]
        return any('Iter(train)' in open(p).read() for p in logs)

    while not osp.isfile(final):
        attempts += 1
        begun = time.time()
        proc = start(faulty, resume=True)
        if faults >= args.kills:
            print(f'final resume: exit {proc.wait()}')
            break
        while proc.poll() is None and not training_started(begun):
            time.sleep(0.02)
        delay = rng.uniform(0.0, args.window)  # after this attempt's first logged iteration
        try:
            rc = proc.wait(delay)
            print(f'attempt {attempts}: the run ended (exit {rc}) within {delay:.2f} s')
            continue
        except subprocess.TimeoutExpired:
            pass
        faults += 1
        sigterm = args.sigterm_every and faults % args.sigterm_every == 0
        if sigterm:
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait()
            what = f'SIGTERM -> exit {rc} in {time.monotonic() - sent:.1f} s'
            if rc != 0 and not osp.isfile(final):
                print(f'fault {faults}: {what}: a SIGTERM during training must exit 0')
                return 1
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            what = 'SIGKILL'
        on_disk = sorted(f for f in os.listdir(faulty) if f.endswith(('.pth', '.partial')))
        pointer = open(osp.join(faulty, 'last_checkpoint')).read().strip() \
            if osp.isfile(osp.join(faulty, 'last_checkpoint')) else None
        print(f'fault {faults}: {what} {delay:.2f} s after the first iteration of attempt '
              f'{attempts}; on disk: {on_disk}; last_checkpoint: '
              f'{osp.basename(pointer) if pointer else None}')
    print(f'{faults} faults in {attempts} attempts')

    a = torch.load(osp.join(straight, f'iter_{args.max_iters}.pth'), map_location='cpu',
                   weights_only=False)
    b = torch.load(final, map_location='cpu', weights_only=False)

    def differ(x, y, where=''):
        if isinstance(x, torch.Tensor):
            return [] if torch.equal(x, y) else [where]
        if isinstance(x, dict):
            return [d for k in x for d in differ(x[k], y[k], f'{where}.{k}')]
        if isinstance(x, (list, tuple)):
            return [d for i, (u, v) in enumerate(zip(x, y)) for d in differ(u, v, f'{where}.{i}')]
        return [] if x == y else [where]

    bad = [d for key in ('state_dict', 'optimizer') for d in differ(a[key], b[key], key)]
    print(f'{faults} faults; final weights, buffers and optimizer state '
          + ('equal the uninterrupted run bit for bit' if not bad else f'DIFFER: {bad[:5]}'))
    return 0 if not bad else 1


if __name__ == '__main__':
    sys.exit(main())
