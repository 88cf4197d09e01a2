"""Training cost of Win-Win against full-resolution training, measured side by side.

One training iteration = forward + backward + AdamW step of a RoPE ViT-B/16 with a
linear segmentation head (1x1 conv on the token grid, upsampled to pixels, cross
entropy), on one 1280x720 image (batch size configurable):

* ``winwin``: the backbone runs on 2 windows of 22x22 tokens (968 of 3600 tokens),
  the head on each window's grid, the loss on the windows' pixels;
* ``fullres``: the backbone and head run on all 3600 tokens, loss on all pixels.

Each mode and each measurement runs in its own fresh subprocess (same script, same
seed), one after the other in the same invocation:

* time: median wall-clock seconds per iteration over ``--iters`` iterations after
  ``--warmup`` iterations (``torch.set_num_threads(--threads)``), default allocator;
* memory (a separate process, one iteration after the warm-up): on CUDA,
  ``torch.cuda.max_memory_allocated`` during the iteration minus the allocation before
  it; on CPU, the peak resident set size during the iteration minus the resident size
  before it (Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``, with
  glibc's mmap threshold pinned at 128 KiB through ``MALLOC_MMAP_THRESHOLD_`` so freed
  tensors go back to the OS at once and the RSS follows live memory; that setting
  slows allocation, hence the separate process). Both exclude the weights and the
  AdamW state (the same in both modes) and include activations, gradients and
  temporaries.

Needs torch only (the pure core ``mmwinwin.layers``, the model of
``mmwinwin.utils.benchmark_models``), so it also runs on a GPU
machine without mmcv::

    python tools/analysis_tools/benchmark_winwin.py               # CPU, 1 thread
    python tools/analysis_tools/benchmark_winwin.py --device cuda --iters 10
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from mmwinwin.layers import sample_grid_size
from mmwinwin.utils.benchmark import PeakMemory, time_fn
from mmwinwin.utils.benchmark_models import LinearSegModel, training_step


def run_one(args) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    H, W = args.height, args.width
    model = LinearSegModel(args.arch, 19).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    img = torch.randn(args.batch_size, 3, H, W, device=dev)
    label = torch.randint(0, 19, (args.batch_size, H, W), device=dev)
    gen = torch.Generator().manual_seed(0)
    grid = sample_grid_size((H, W), 16)

    def step():
        training_step(model, opt, img, label, args.mode, grid, args.num_windows,
                      args.window_size, gen)
        if dev.type == 'cuda':
            torch.cuda.synchronize()

    if args.measure == 'time':
        t = time_fn(step, dev, warmup=args.warmup, repeats=args.iters)
        return dict(s_per_iter=t.median, times=t.times)
    for _ in range(args.warmup):
        step()
    with PeakMemory(dev) as mem:
        step()
    peak = mem.growth_bytes
    tokens = (args.num_windows * args.window_size ** 2 if args.mode == 'winwin'
              else grid[0] * grid[1])
    return dict(tokens=tokens, peak_bytes=peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='base')
    parser.add_argument('--height', type=int, default=720)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--num-windows', type=int, default=2)
    parser.add_argument('--window-size', type=int, default=22)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (1 is the most robust on a shared CPU)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--mode', choices=['winwin', 'fullres'], help=argparse.SUPPRESS)
    parser.add_argument('--measure', choices=['time', 'memory'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # child process: measure one mode, print JSON
        print('RESULT ' + json.dumps(run_one(args)))
        return

    results = {'winwin': {}, 'fullres': {}}
    for measure in ('time', 'memory'):
        env = dict(os.environ)
        if measure == 'memory':
            env['MALLOC_MMAP_THRESHOLD_'] = '131072'
        for mode in ('winwin', 'fullres'):
            cmd = [sys.executable, os.path.abspath(__file__), '--mode', mode,
                   '--measure', measure] + sys.argv[1:]
            print(f'measuring {measure} of {mode} ...', flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
            if proc.returncode or not lines:
                sys.exit(f'{mode} {measure} run failed:\n{proc.stderr[-3000:]}')
            results[mode].update(json.loads(lines[-1][len('RESULT '):]))
    w, f = results['winwin'], results['fullres']
    mem = 'peak CUDA memory' if args.device.startswith('cuda') else 'peak RSS increase'
    print(f'\nViT-{args.arch}/16 + linear head, {args.width}x{args.height}, batch {args.batch_size}, '
          f'device {args.device}, threads {args.threads}; time: median of {args.iters} '
          f'iterations after {args.warmup} warm-up; memory: one iteration after warm-up')
    print(f'| mode | tokens | s / iter | {mem} (MiB) |')
    print('|---|---:|---:|---:|')
    for r, name in ((w, f'Win-Win {args.num_windows}x{args.window_size}x{args.window_size}'),
                    (f, 'full resolution')):
        print(f"| {name} | {r['tokens']} | {r['s_per_iter']:.3f} | {r['peak_bytes'] / 2**20:.0f} |")
    print(f"| ratio full / Win-Win | {f['tokens'] / w['tokens']:.2f}x | "
          f"{f['s_per_iter'] / w['s_per_iter']:.2f}x | {f['peak_bytes'] / w['peak_bytes']:.2f}x |")


if __name__ == '__main__':
    main()
