"""Win-Win for optical flow: training cost per iteration (windows vs full resolution) and
full-HD single-pass inference time and memory, side by side in one run, beside
CroCo-Flow-style tiled inference (the paper's comparison; ``--tile 0 0`` skips it).

Every measurement runs in its own fresh subprocess so that its peak memory is its own:
on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size of the
process minus the resident size right after the model was built, i.e. the activations,
gradients and optimizer state of that step (``mmwinwin.utils.benchmark.PeakMemory``).

Examples::

    # GPU, the paper's setting: ViT-B, Spring 1920x1080
    python tools/analysis_tools/benchmark_flow.py --device cuda --reps 5
    # shared CPU: one repetition, Sintel-size training, full-HD inference
    python tools/analysis_tools/benchmark_flow.py --threads 2 --reps 1 --train-size 436 1024
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp

from mmwinwin.utils.benchmark_models import FLOW_ARCHS

ARCHS = FLOW_ARCHS  # the model sizes, in mmwinwin.utils.benchmark_models


def _measure(job: dict, queue) -> None:
    import torch

    from mmwinwin.utils.benchmark import PeakMemory, time_fn
    torch.set_num_threads(job['threads'])
    torch.manual_seed(0)
    from mmwinwin.layers.flow.croco import CroCoFlowNet
    from mmwinwin.layers.flow.ops import masked_epe_loss
    from mmwinwin.layers.flow.tiling import tiled_flow
    from mmwinwin.layers.winwin.pair_windows import crop_pair_windows
    from mmwinwin.layers.winwin.windows import sample_grid_size, sample_windows
    dev = torch.device(job['device'])
    net = CroCoFlowNet(**ARCHS[job['arch']]).to(dev)
    H, W = job['size']
    B = job['batch']
    g = torch.Generator().manual_seed(0)
    img1 = torch.randn(B, 3, H, W, generator=g).to(dev)
    img2 = torch.randn(B, 3, H, W, generator=g).to(dev)
    gt = torch.randn(B, 2, H, W, generator=g).to(dev)
    valid = torch.ones(B, H, W, dtype=torch.bool, device=dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5) if job['mode'] == 'train' else None

    def step():
        if job['mode'] == 'infer':
            with torch.no_grad():
                net.eval()
                if job.get('tile'):
                    tiled_flow(net, img1, img2, job['tile'], job['overlap'])
                else:
                    net(img1, img2)
            return
        net.train()
        if job['windows'] is None:
            pred, tgt, val = net(img1, img2), gt, valid
        else:
            n, s = job['windows']
            grid = sample_grid_size((H, W), net.patch_size)
            bw = [sample_windows(grid, n, s, generator=g) for _ in range(B)]
            pred = net.forward_windows(img1, img2, bw)
            tgt = crop_pair_windows(gt, bw, net.patch_size)
            val = crop_pair_windows(valid[:, None].float(), bw, net.patch_size)[:, 0] > 0.5
        loss = masked_epe_loss(pred, tgt, val)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with PeakMemory(dev) as mem:  # from right after the model was built
        t = time_fn(step, dev, warmup=job['warmup'], repeats=job['reps'])
    mem = mem.growth_mib if dev.type == 'cpu' else mem.peak_mib
    tokens = (-(-H // net.patch_size)) * (-(-W // net.patch_size))
    kept = tokens if job['windows'] is None else job['windows'][0] * job['windows'][1] ** 2
    queue.put(dict(seconds=t.min, memory_mb=mem, tokens=kept, all_tokens=tokens))


def run(job: dict) -> dict:
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(job, q))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f'measurement {job} failed (exit code {p.exitcode}).')
    return q.get()


def parse_windows(spec: str) -> list[tuple[int, int]]:
    out = []
    for item in spec.split(','):
        n, s = item.lower().split('x')
        out.append((int(n), int(s)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='base', choices=sorted(ARCHS))
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--reps', type=int, default=1, help='timed repetitions (min is reported)')
    p.add_argument('--warmup', type=int, default=0)
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--train-size', type=int, nargs=2, default=(1080, 1920), metavar=('H', 'W'))
    p.add_argument('--infer-size', type=int, nargs=2, default=(1080, 1920), metavar=('H', 'W'))
    p.add_argument('--windows', default='2x10,4x7', help='NxS list: N windows of SxS tokens')
    p.add_argument('--tile', type=int, nargs=2, default=(384, 512), metavar=('H', 'W'),
                   help='tile of the tiled-inference row (a training-crop size); 0 0 skips it')
    p.add_argument('--tile-overlap', type=float, default=0.5)
    p.add_argument('--skip-full-train', action='store_true',
                   help='omit the full-resolution training step (slow on CPU)')
    p.add_argument('--json', help='also write the rows to this file')
    a = p.parse_args()
    common = dict(arch=a.arch, device=a.device, threads=a.threads, reps=a.reps,
                  warmup=a.warmup, batch=a.batch)
    rows = []
    train_jobs = [None] + parse_windows(a.windows)
    if a.skip_full_train:
        train_jobs = train_jobs[1:]
    for w in train_jobs:
        r = run(dict(common, mode='train', size=tuple(a.train_size), windows=w))
        name = 'full resolution' if w is None else f'Win-Win {w[0]}x{w[1]}x{w[1]}'
        rows.append(dict(r, what=f'train step, {name}', size=tuple(a.train_size)))
        print(json.dumps(rows[-1]), flush=True)
    r = run(dict(common, mode='infer', size=tuple(a.infer_size), windows=None))
    rows.append(dict(r, what='inference, whole frame, one pass', size=tuple(a.infer_size)))
    print(json.dumps(rows[-1]), flush=True)
    if a.tile[0] > 0 and a.tile[1] > 0:
        from mmwinwin.layers.flow.tiling import tile_offsets
        tile = (min(a.tile[0], a.infer_size[0]), min(a.tile[1], a.infer_size[1]))
        n = (len(tile_offsets(a.infer_size[0], tile[0], a.tile_overlap))
             * len(tile_offsets(a.infer_size[1], tile[1], a.tile_overlap)))
        r = run(dict(common, mode='infer', size=tuple(a.infer_size), windows=None, tile=tile,
                     overlap=a.tile_overlap))
        rows.append(dict(r, what=f'inference, tiled {tile[1]}x{tile[0]} overlap '
                         f'{a.tile_overlap:g} ({n} tiles)', size=tuple(a.infer_size)))
        print(json.dumps(rows[-1]), flush=True)

    full = next((x for x in rows if x['what'] == 'train step, full resolution'), None)
    mem_kind = 'GPU peak alloc' if a.device.startswith('cuda') else 'CPU peak RSS increase'
    print(f'\nViT arch={a.arch}, device={a.device}, threads={a.threads}, batch={a.batch}, '
          f'reps={a.reps} (min), warmup={a.warmup}')
    print(f'| what | input | tokens kept | s / iter | speed-up | {mem_kind} (MiB) |')
    print('|---|---|---|---|---|---|')
    one_pass = next(x for x in rows if x['what'] == 'inference, whole frame, one pass')
    for x in rows:
        if x['what'].startswith('train'):
            sp = f'{full["seconds"] / x["seconds"]:.2f}x' if full else '-'
        elif x is not one_pass:  # tiled: how much slower than the one pass
            sp = f'one pass {x["seconds"] / one_pass["seconds"]:.2f}x faster'
        else:
            sp = '-'
        print(f'| {x["what"]} | {x["size"][1]}x{x["size"][0]} | {x["tokens"]}/{x["all_tokens"]} '
              f'| {x["seconds"]:.3f} | {sp} | {x["memory_mb"]:.0f} |')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
