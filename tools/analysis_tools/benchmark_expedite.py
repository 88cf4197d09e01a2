"""Benchmark Expedite: baseline vs expedited settings of one model, side by side.

    python tools/analysis_tools/benchmark_expedite.py CONFIG [--checkpoint CKPT] [--size 640 640]
        [--settings 16:28x28 10:28x28 8:20x20] [--reps 2] [--threads 2] [--device cpu]
        [--linear-size 1024 2048] [--out-dir work_dirs/benchmark_expedite]

For the config's model (an expedited backbone: ``ExpeditedMMSegViT`` / ``ExpeditedRoPEViT``)
it measures, in one process and on the same weights:

* GMACs of one forward (``encode_decode``: backbone + head + reconstruction), counted with
  ``torch.utils.flop_counter`` and reported as **multiply-accumulates** (FLOPs / 2), like
  the paper's GFLOPs. Matrix products are counted, including the attention of torch's
  fused SDPA / native MHA kernels (formulas registered below) and the batched products of
  clustering and reconstruction; element-wise ops, softmax, norms and resizes are not
  (as fvcore / mmcv counters do);
* images/s (median of ``--reps`` timed forwards after one warm-up, interleaved over the
  settings so that other load on a shared machine hits all alike) and the process CPU
  time per forward (with ``--threads 1`` this is the compute time, insensitive to other
  processes on a shared machine: the robust speed-up there), timed with glibc's default
  allocator;
* peak memory, in one more untimed forward per setting: on CPU the process's peak
  resident set during the forward (VmHWM, reset before each measurement, with the mmap
  threshold pinned so that freed buffers go back to the OS -- pinned only after the
  timing, because it turns every large tensor into fresh page faults and slowed
  clustering + reconstruction 1.6x), on CUDA ``max_memory_allocated``;
* the time and GMACs of clustering + reconstruction alone at the same shapes (random
  tokens: their cost depends on shapes only), timed right after each timed expedited
  forward, and its share of the expedited forward in wall and in CPU time; with
  ``--linear-size`` the same at a larger input (a fixed cluster grid scaled with the
  token grid), per token, to show linearity.

Attention is torch's fused kernel in the baseline too (``use_fused_attention``). The
baseline is the same model with ``expedite=None``: no clustering, the exact plain path.
Each ``--settings`` entry is ``ALPHA:HxW`` (cluster grid) or ``ALPHA:sS`` (scale S per
axis), optionally followed by ``:former`` (mmwinwin's former local operators) or
``:OPTION=VALUE`` (one operator option, e.g. ``:reconstruction_topk=local``); other
hyper-parameters (iters, window, t, k, placement) come from the config.
Writes ``results.json``, ``results.md`` (the table) and ``speed_vs_alpha.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

# MACs, time, memory: the shared helpers (mmwinwin/utils/benchmark.py: fused SDPA / native
# MHA attention counted, a CUDA-aware timer, peak memory on CUDA or as the CPU process's
# peak RSS)
from mmwinwin.utils.benchmark import (PeakMemory, Timing, count_macs, pin_malloc_threshold,
                                      sdpa_kernels, time_fn)



def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--checkpoint', help='weights to load (strict); random init otherwise')
    p.add_argument('--size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default: the config crop size)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--settings', nargs='+', default=None,
                   help='ALPHA:HxW or ALPHA:sSCALE entries, optionally :former or '
                        ':OPTION=VALUE (default: the config setting)')
    p.add_argument('--reps', type=int, default=3, help='timed forwards per setting')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--linear-size', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='also time clustering + reconstruction alone at this input size')
    p.add_argument('--out-dir', default='work_dirs/benchmark_expedite')
    p.add_argument('--no-flops', action='store_true',
                   help='skip MAC counting (and with it the warm-up forward)')
    return p.parse_args()



__all__ = ['count_macs', 'time_it']


def time_it(fn, reps: int, device, cpu_times: list | None = None) -> tuple[float, float]:
    """(median wall seconds, peak memory MB) of ``reps`` calls; appends the process CPU
    seconds of each call to ``cpu_times`` (robust to other load on a shared machine)."""
    with PeakMemory(device) as mem:
        t = time_fn(fn, device, warmup=0, repeats=reps)
    if cpu_times is not None:
        cpu_times.extend(t.cpu_times)
    return t.median, mem.peak_mib


# ------------------------------------------------------------------- the model
def build_model(cfg_path: str, checkpoint: str | None, device):
    from mmengine.config import Config

    import mmwinwin  # noqa: F401
    from mmwinwin.models.expedite import use_fused_attention
    cfg = Config.fromfile(cfg_path)
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import MODELS
    cfg.model.pretrained = None
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    if checkpoint:
        from mmwinwin.utils import load_checkpoint_strict
        load_checkpoint_strict(model, checkpoint)
    use_fused_attention(model)
    return cfg, model.to(device).eval()


def parse_setting(text: str, base):
    """``ALPHA[:GRID][:former][:OPTION=VALUE ...]`` -> settings: GRID is ``HxW`` or ``sSCALE``
    (else the config's grid), ``former`` selects mmwinwin's former local operators
    (``ExpediteSettings.previous_local``), ``OPTION=VALUE`` one operator option (e.g.
    ``reconstruction_topk=local``); the rest comes from the config."""
    from dataclasses import replace

    from mmwinwin.layers.expedite.plugin import OPTIONS, PREVIOUS_LOCAL
    alpha, *parts = text.split(':')
    grid = parts.pop(0) if parts and '=' not in parts[0] and parts[0] != 'former' else ''
    options = dict(p.split('=', 1) for p in parts if '=' in p)
    unknown = [p for p in parts if '=' not in p and p != 'former']
    unknown += [f'{k}={v}' for k, v in options.items() if k not in OPTIONS or v not in OPTIONS[k]]
    if unknown:
        raise ValueError(f'Setting {text!r}: expected ALPHA[:HxW|:sSCALE][:former][:OPTION=VALUE],'
                         f' e.g. 10:28x28:reconstruction_topk=local, with options {OPTIONS}; '
                         f'could not read {unknown}.')
    kw = dict(alpha=int(alpha), cluster_grid=None, num_clusters=None, cluster_scale=None)
    if grid.startswith('s'):
        kw['cluster_scale'] = float(grid[1:])
    elif grid:
        h, w = grid.lower().split('x')
        kw['cluster_grid'] = (int(h), int(w))
    else:
        kw.update(cluster_grid=base.cluster_grid, num_clusters=base.num_clusters,
                  cluster_scale=base.cluster_scale)
    if 'former' in parts:
        kw.update(PREVIOUS_LOCAL)
    kw.update(options)
    return replace(base, **kw)


def label(s) -> str:
    from mmwinwin.layers.expedite.plugin import OPTIONS, PREVIOUS_LOCAL
    if s is None:
        return 'baseline'
    g = (f'{s.cluster_grid[0]}x{s.cluster_grid[1]}' if s.cluster_grid else
         f'{s.num_clusters}' if s.num_clusters else f'scale {s.cluster_scale}')
    departs = {k: getattr(s, k) for k in OPTIONS if getattr(s, k) != OPTIONS[k][0]}
    if departs == PREVIOUS_LOCAL:
        return f'alpha={s.alpha}, {g}, former local operators'
    return f'alpha={s.alpha}, {g}' + ''.join(f', {k}={v}' for k, v in departs.items())


def scaled(s, size, big, model):
    """The setting with a fixed cluster grid scaled from ``size`` to input ``big``."""
    from dataclasses import replace
    if not s.cluster_grid:
        return s
    p = model.backbone.patch_size
    p = p if isinstance(p, int) else p[0]
    fy = (-(-big[0] // p)) / (-(-size[0] // p))
    fx = (-(-big[1] // p)) / (-(-size[1] // p))
    return replace(s, cluster_grid=(round(s.cluster_grid[0] * fy), round(s.cluster_grid[1] * fx)))


def cluster_run(model, s, size, batch, device):
    """``(run, GMACs, tokens)``: clustering + reconstruction alone at the model's shapes
    for one setting (random tokens: their cost depends on the shapes only)."""
    from mmwinwin.layers import cluster_sequence, reconstruct_tokens
    bb = model.backbone
    p = getattr(bb, 'patch_size', 16)
    p = p if isinstance(p, int) else p[0]
    grid = (-(-size[0] // p), -(-size[1] // p))
    C = bb.embed_dims if isinstance(getattr(bb, 'embed_dims', None), int) else \
        bb.cls_token.shape[-1]
    prefix = getattr(bb, 'num_prefix_tokens', None)
    if prefix is None:
        prefix = 1 if bb.with_cls_token else 0
    n_out = len(bb.out_indices)
    num_classes = getattr(model.decode_head, 'num_classes', 150)
    torch.manual_seed(0)
    x = torch.randn(batch, prefix + grid[0] * grid[1], C, device=device)

    def run():
        with torch.no_grad():
            _, _, _, w = cluster_sequence(x, prefix, grid, s)
            if s.reconstruct == 'logits':
                reconstruct_tokens(torch.randn(batch, w.num_clusters, num_classes,
                                               device=device), w)
            else:
                for _ in range(n_out):
                    reconstruct_tokens(torch.randn(batch, w.num_clusters, C, device=device), w)

    macs, _ = count_macs(run)
    run()  # warm-up (index tables are built and cached on the first call)
    return run, macs / 1e9, grid[0] * grid[1]


def row_tokens(model, size) -> int:
    p = getattr(model.backbone, 'patch_size', 16)
    p = p if isinstance(p, int) else p[0]
    return (-(-size[0] // p)) * (-(-size[1] // p))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg, model = build_model(args.config, args.checkpoint, device)
    from mmwinwin.layers import ExpediteSettings
    base = model.backbone.expedite
    if base is None:
        raise ValueError('The config has no expedited backbone (backbone.expedite); use one '
                         'of configs/expedite/*.py or add expedite=dict(...) to the backbone.')
    size = tuple(args.size) if args.size else tuple(
        cfg.model.get('test_cfg', {}).get('crop_size') or cfg.model.data_preprocessor.size)
    settings = [None] + ([parse_setting(t, base) for t in args.settings]
                         if args.settings else [base])
    for s in settings[1:]:
        s.check_alpha(len(getattr(model.backbone, 'layers', None) or model.backbone.blocks))
        ExpediteSettings.__post_init__(s)
    img = torch.randn(args.batch, 3, *size, device=device)
    metas = [dict(img_shape=size, ori_shape=size, pad_shape=size)] * args.batch
    print(f'{args.config}: input {args.batch}x3x{size[0]}x{size[1]}, device {device}, '
          f'{args.threads} threads, {args.reps} timed reps (+1 warm-up = FLOP count)', flush=True)

    rows = []
    for s in settings:  # GMACs; this forward is also the warm-up of the setting
        model.backbone.expedite = s
        macs, kernels = float('nan'), {}
        if not args.no_flops:
            counted = []
            with torch.no_grad():  # also records which SDPA kernel ran (same in both)
                kernels = sdpa_kernels(lambda: counted.append(
                    count_macs(lambda: model.encode_decode(img, metas))[0]))
            macs = counted[0]
        row = dict(setting=label(s), alpha=None if s is None else s.alpha,
                   gmacs=macs / 1e9, sdpa_kernels=kernels, times=[], cpu_times=[],
                   peak_mb=float('nan'))
        if s is not None:  # clustering + reconstruction alone, at the same shapes
            row['cluster_run'], row['cluster_gmacs'], _ = cluster_run(model, s, size,
                                                                      args.batch, device)
            row['cluster_times'], row['cluster_cpu_times'] = [], []
        rows.append(row)
    # timed forwards interleaved over the settings, so that load from other processes
    # on a shared machine hits baseline and expedited alike; after each expedited forward
    # its clustering + reconstruction alone, so that the share compares like moments.
    # Timed with glibc's default allocator: the pinned mmap threshold that peak-memory
    # measurement needs makes every large tensor a fresh mmap (page faults), which slowed
    # clustering + reconstruction 1.6x in CPU time and 3x in wall time here
    for _ in range(args.reps):
        for s, row in zip(settings, rows):
            model.backbone.expedite = s
            with torch.no_grad():
                t = time_fn(lambda: model.encode_decode(img, metas), device, warmup=0,
                            repeats=1)
            row['times'] += t.times
            row['cpu_times'] += t.cpu_times
            if s is not None:
                t = time_fn(row['cluster_run'], device, warmup=0, repeats=1)
                row['cluster_times'] += t.times
                row['cluster_cpu_times'] += t.cpu_times
    # linearity: clustering + reconstruction alone at the config size and at
    # --linear-size, the two interleaved (same allocator, same moments)
    for s, row in zip(settings, rows):
        if s is not None and args.linear_size:
            big = scaled(s, size, tuple(args.linear_size), model)
            runs = dict(small=row['cluster_run'], large=None)
            runs['large'], big_gmacs, big_tokens = cluster_run(
                model, big, tuple(args.linear_size), args.batch, device)
            timing = {key: Timing() for key in runs}
            for _ in range(max(args.reps, 2)):
                for key, fn in runs.items():
                    time_fn(fn, device, warmup=0, repeats=1, timing=timing[key])
            row['linear'] = {key: dict(tokens=n, gmacs=g, seconds=timing[key].median,
                                       cpu_seconds=timing[key].cpu_median)
                             for key, n, g in (('small', row_tokens(model, size),
                                                row['cluster_gmacs']),
                                               ('large', big_tokens, big_gmacs))}
            row['linear']['large']['cluster_grid'] = big.cluster_grid
    # peak memory: one more forward per setting, untimed, with the pinned mmap threshold
    # (freed buffers go back to the OS, so the peak RSS follows the live tensors)
    pin_malloc_threshold()
    for s, row in zip(settings, rows):
        model.backbone.expedite = s
        with torch.no_grad():
            _, row['peak_mb'] = time_it(lambda: model.encode_decode(img, metas), 1, device)
    for s, row in zip(settings, rows):
        t = row['seconds'] = statistics.median(row['times'])
        row['cpu_seconds'] = statistics.median(row['cpu_times'])
        row['images_per_s'] = args.batch / t
        if s is not None:
            row.pop('cluster_run')
            row.update(cluster_seconds=statistics.median(row['cluster_times']),
                       cluster_cpu_seconds=statistics.median(row['cluster_cpu_times']))
            row.update(cluster_share=row['cluster_seconds'] / t,
                       cluster_cpu_share=row['cluster_cpu_seconds'] / row['cpu_seconds'])
        print(f"  {row['setting']:<22} {row['gmacs']:8.2f} GMACs  {t * 1000:9.1f} ms  "
              f"{row['peak_mb']:8.0f} MB  SDPA {row['sdpa_kernels']}", flush=True)
    model.backbone.expedite = base

    b = rows[0]
    for r in rows:
        r['gmacs_ratio'] = r['gmacs'] / b['gmacs']
        r['speedup'] = b['seconds'] / r['seconds']
        r['cpu_speedup'] = b['cpu_seconds'] / r['cpu_seconds']
    lines = [f'Input {args.batch}x3x{size[0]}x{size[1]}, {device}, {args.threads} threads, '
             f'median of {args.reps}. GMACs = multiply-accumulates (incl. clustering + '
             'reconstruction, SDPA attention counted). SDPA kernel calls per forward: '
             f"{rows[0]['sdpa_kernels'] or 'not recorded'} (baseline), "
             f"{rows[-1]['sdpa_kernels'] or 'not recorded'} (expedited). Clustering + "
             'reconstruction timed alone after each expedited forward; share = its median '
             'over the forward\'s median (wall / process CPU time).', '',
             '| setting | GMACs | ratio | ms / img | img/s | speed-up | CPU s / img | '
             'speed-up (CPU time) | peak MB | clust.+recon. ms (wall / CPU) | '
             'share of fwd (wall / CPU) |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        share = (f"{r['cluster_seconds'] * 1000 / args.batch:.1f} / "
                 f"{r['cluster_cpu_seconds'] * 1000 / args.batch:.1f} | "
                 f"{100 * r['cluster_share']:.1f} % / {100 * r['cluster_cpu_share']:.1f} %"
                 if 'cluster_seconds' in r else '- | -')
        lines.append(f"| {r['setting']} | {r['gmacs']:.2f} | {r['gmacs_ratio']:.3f} | "
                     f"{r['seconds'] * 1000 / args.batch:.1f} | {r['images_per_s']:.3f} | "
                     f"{r['speedup']:.2f}x | {r['cpu_seconds'] / args.batch:.2f} | "
                     f"{r['cpu_speedup']:.2f}x | {r['peak_mb']:.0f} | {share} |")
    lin = [r for r in rows if 'linear' in r]
    if lin:
        lines += ['', 'Clustering + reconstruction alone (random tokens), per token:', '',
                  '| setting | tokens | ms (wall) | CPU ms | us / token (wall) | '
                  'CPU us / token | GMACs | kMACs / token |',
                  '|---|---|---|---|---|---|---|---|']
        for r in lin:
            for key in ('small', 'large'):
                d = r['linear'][key]
                lines.append(f"| {r['setting']} | {d['tokens']} | {d['seconds'] * 1000:.1f} | "
                             f"{d['cpu_seconds'] * 1000:.1f} | "
                             f"{d['seconds'] * 1e6 / d['tokens']:.1f} | "
                             f"{d['cpu_seconds'] * 1e6 / d['tokens']:.1f} | {d['gmacs']:.3f} | "
                             f"{d['gmacs'] * 1e6 / d['tokens']:.1f} |")
    table = '\n'.join(lines)
    print(table)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(dict(config=args.config, size=size, batch=args.batch, device=str(device),
                       threads=args.threads, reps=args.reps, rows=rows), f, indent=2)
    with open(os.path.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    plot(rows, os.path.join(args.out_dir, 'speed_vs_alpha.png'), args.config)
    print(f'wrote {args.out_dir}/results.json, results.md, speed_vs_alpha.png')


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    groups = {}
    for r in rows[1:]:
        groups.setdefault(r['setting'].split(', ', 1)[1], []).append(r)
    for g, rs in groups.items():
        rs = sorted(rs, key=lambda r: r['alpha'])
        ax.plot([r['alpha'] for r in rs], [r['speedup'] for r in rs], 'o-',
                label=f'measured wall time, {g}')
        ax.plot([r['alpha'] for r in rs], [r['cpu_speedup'] for r in rs], 's-',
                label=f'measured CPU time, {g}')
        ax.plot([r['alpha'] for r in rs], [1 / r['gmacs_ratio'] for r in rs], 'x--',
                label=f'1 / GMACs ratio, {g}')
    ax.axhline(1.0, color='gray', lw=0.8)
    ax.set_xlabel('alpha (cluster after layer)')
    ax.set_ylabel('speed-up over baseline')
    ax.set_title(os.path.basename(title), fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
