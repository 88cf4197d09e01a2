"""One-run GPU benchmark of mmwinwin's pure core: Win-Win training, Expedite inference,
full-HD flow, achieved TFLOP/s, side by side (``tools/analysis_tools/benchmark_device.sh`` runs it).

    python tools/analysis_tools/benchmark_device.py OUT_DIR [--smoke] [--device cuda] [--dtype bf16]
        [--compile] [--warmup 3] [--repeats 10] [--parts winwin expedite flow]

Needs torch only: it imports ``mmwinwin.layers`` (the pure core),
``mmwinwin.utils.benchmark`` (timer, peak memory, MACs) and
``mmwinwin.utils.benchmark_models`` (the measured models), never mmcv / mmseg / mmdet
(the GPU machine has none). It measures:

* ``winwin``: one training step (forward + backward + AdamW) of a RoPE ViT + linear
  segmentation head, Win-Win windows vs the full image, ViT-B/16 and ViT-L/16 at
  1280x720 (2 windows of 22x22 tokens) and 1024x2048 (2 of 32x32): ms / step, peak
  memory, ratios; and the inference forward at full resolution: ms, MACs, achieved
  TFLOP/s against the device's dense peak (H200: 989 TFLOP/s dense bf16);
* ``expedite``: a Segmenter-shaped ViT-L/16 (cls token, 24 blocks, a 2-layer mask
  transformer head with 150 class tokens, reconstruction on the logits) at 640x640,
  alpha 16/10/8 with 28x28/28x28/20x20 clusters, batch 1 and 8: images/s vs the same
  model with clustering off, MAC ratio, and the share of clustering + reconstruction;
* ``flow``: a CroCo-Flow-style ViT-B on a 1080p pair, one pass vs tiled (384x512 tiles,
  overlap 0.5): ms and peak memory.

Every forward runs under ``torch.autocast`` in ``--dtype`` (bf16 by default; fp32 turns it
off). The SDPA kernel that ran (recorded from the aten ops), the kernels available for the
measured shapes (probed with ``torch.nn.attention.sdpa_kernel``), torch / CUDA versions,
dtype and batch are written beside the figures: ``OUT_DIR/results.json`` and
``OUT_DIR/results.md``. ``--smoke`` runs the same code paths at tiny sizes (CPU, seconds).
``--compile`` adds each training step and Expedite forward measured under
``torch.compile`` (default mode) next to the eager one.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import os.path as osp
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from mmwinwin.layers import (CroCoFlowNet, ExpediteSettings, RoPEVisionTransformer,
                             cluster_sequence, reconstruct_tokens, sample_grid_size, tiled_flow)
from mmwinwin.layers.vit.vision_transformer import Block
from mmwinwin.utils.benchmark import PeakMemory, count_macs, sdpa_kernels, time_fn
from mmwinwin.utils.benchmark_models import (FLOW_ARCHS, LinearSegModel, SegmenterShaped,
                                             training_step)

#: dense (no 2:4 sparsity) peak of the tensor cores, TFLOP/s, by device name and dtype
PEAK_TFLOPS = {('H200', 'bf16'): 989.0, ('H200', 'fp16'): 989.0,
               ('H100', 'bf16'): 989.0, ('H100', 'fp16'): 989.0}
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'fp32': torch.float32}

FULL = dict(
    winwin=[('base', (720, 1280), 2, 22), ('large', (720, 1280), 2, 22),
            ('base', (1024, 2048), 2, 32), ('large', (1024, 2048), 2, 32)],
    expedite=dict(arch='large', size=(640, 640), batches=(1, 8), head_layers=2,
                  num_classes=150, settings=[(16, (28, 28)), (10, (28, 28)), (8, (20, 20))],
                  k=20),
    flow=dict(arch='base', size=(1080, 1920), tile=(384, 512), overlap=0.5),
)
TINY_VIT = dict(embed_dims=32, num_layers=4, num_heads=2)
SMOKE = dict(
    winwin=[(TINY_VIT, (64, 96), 2, 2), (TINY_VIT, (96, 128), 2, 3)],
    expedite=dict(arch=TINY_VIT, size=(96, 96), batches=(1, 2), head_layers=1,
                  num_classes=5, settings=[(3, (4, 4)), (2, (4, 4)), (1, (3, 3))], k=8),
    flow=dict(arch='tiny', size=(96, 160), tile=(64, 96), overlap=0.5),
)


# ------------------------------------------------------------------------ helpers
class Bench:
    """Device, dtype, repeats; times and memory of a callable under autocast."""

    def __init__(self, args) -> None:
        self.device = torch.device(args.device)
        self.dtype_name = args.dtype
        self.dtype = DTYPES[args.dtype]
        self.warmup, self.repeats = args.warmup, args.repeats

    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def measure(self, fn) -> dict:
        """Median / min ms of ``fn`` under autocast and its peak memory (MiB)."""
        def run():
            with self.autocast():
                fn()
        # warm-up outside the memory measurement: first-call allocations (AdamW state,
        # cached index tables, cuDNN / compile workspaces) are not the step's memory
        for _ in range(self.warmup):
            run()
        with PeakMemory(self.device) as mem:
            t = time_fn(run, self.device, warmup=0, repeats=self.repeats)
        return dict(ms=1e3 * t.median, ms_min=1e3 * t.min, peak_mib=mem.peak_mib,
                    growth_mib=mem.growth_mib, memory=mem.method)

    def macs(self, fn) -> float:
        with self.autocast():
            return count_macs(fn)[0]

    def kernels(self, fn) -> dict:
        with self.autocast():
            return sdpa_kernels(fn)


def compile_blocks(model: nn.Module) -> nn.Module:
    """``torch.compile`` every transformer block in place (``nn.Module.compile``), so that
    all entry points (``forward``, ``forward_tokens``, the Expedite loop) use them."""
    for m in model.modules():
        if isinstance(m, Block):
            m.compile()
    return model


def probe_sdpa(device, dtype, b, h, n, d) -> dict:
    """Which SDPA backends accept ``(b, h, n, d)`` queries in ``dtype`` here (each tried
    alone through ``torch.nn.attention.sdpa_kernel``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q = torch.randn(b, h, n, d, device=device, dtype=dtype)
    out = {}
    for name in ('FLASH_ATTENTION', 'CUDNN_ATTENTION', 'EFFICIENT_ATTENTION', 'MATH'):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            out[name.lower()] = 'absent in this torch'
            continue
        try:
            with sdpa_kernel([backend]), torch.no_grad():
                F.scaled_dot_product_attention(q, q, q)
            out[name.lower()] = 'ok'
        except RuntimeError as e:
            msg = str(e).splitlines()[0]
            out[name.lower()] = 'unavailable' + (f' ({msg[:80]})' if 'No viable' not in msg
                                                 else '')
    return out


def arch_name(arch) -> str:
    return arch if isinstance(arch, str) else 'x'.join(str(arch[k]) for k in
                                                       ('embed_dims', 'num_layers', 'num_heads'))


# ------------------------------------------------------------------------- Win-Win
def bench_winwin(b: Bench, arch, size, num_windows, window, batch, compiled) -> dict:
    torch.manual_seed(0)
    model = LinearSegModel(arch, 19).to(b.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    H, W = size
    img = torch.randn(batch, 3, H, W, device=b.device)
    label = torch.randint(0, 19, (batch, H, W), device=b.device)
    grid = sample_grid_size((H, W), 16)
    gen = torch.Generator().manual_seed(0)
    row = dict(arch=arch_name(arch), size=f'{W}x{H}', batch=batch, tokens_full=grid[0] * grid[1],
               tokens_winwin=num_windows * window ** 2, windows=f'{num_windows}x{window}x{window}',
               compiled=compiled)
    vit = model.vit
    if compiled:
        compile_blocks(model)

    def step(mode):
        return lambda: training_step(model, opt, img, label, mode, grid, num_windows, window,
                                     gen)

    for mode in ('winwin', 'fullres'):
        row[mode] = b.measure(step(mode))
    row['time_ratio_full_over_winwin'] = row['fullres']['ms'] / row['winwin']['ms']
    row['memory_ratio_full_over_winwin'] = (row['fullres']['growth_mib']
                                            / max(row['winwin']['growth_mib'], 1e-9))
    if not compiled:  # the full-resolution inference forward: MACs, kernel, TFLOP/s
        model.eval()
        with torch.no_grad():
            fwd = lambda: vit(img)  # noqa: E731
            macs = b.macs(fwd)
            row['sdpa_kernels'] = b.kernels(fwd)
            row['forward'] = b.measure(fwd)
        row['forward']['gmacs'] = macs / 1e9
        row['forward']['tflops'] = 2 * macs / (row['forward']['ms'] * 1e-3) / 1e12
        model.train()
        step_macs = b.macs(lambda: model.loss_fullres(img, label).backward())
        opt.zero_grad(set_to_none=True)
        row['fullres']['gmacs'] = step_macs / 1e9
        row['fullres']['tflops'] = 2 * step_macs / (row['fullres']['ms'] * 1e-3) / 1e12
    return row


# ------------------------------------------------------------------------ Expedite
def bench_expedite(b: Bench, cfg: dict, compiled: bool, macs_of: dict) -> list[dict]:
    """``macs_of``: MACs by (batch, setting), counted eagerly, reused for compiled runs."""
    torch.manual_seed(0)
    model = SegmenterShaped(cfg['arch'], cfg['head_layers'], cfg['num_classes'])
    model = model.to(b.device).eval()
    if compiled:
        compile_blocks(model)
    H, W = cfg['size']
    grid = (H // 16, W // 16)
    rows = []
    for batch in cfg['batches']:
        img = torch.randn(batch, 3, H, W, device=b.device)
        settings = [None] + [ExpediteSettings(alpha=a, cluster_grid=g, k=cfg['k'],
                                              reconstruct='logits')
                             for a, g in cfg['settings']]
        base = None
        for s in settings:
            model.expedite = s
            fwd = lambda: model(img)  # noqa: E731
            with torch.no_grad():
                r = b.measure(fwd)
                kernels = b.kernels(lambda: model(img)) if not compiled else {}
            name = ('clustering off' if s is None else
                    f'alpha={s.alpha}, {s.cluster_grid[0]}x{s.cluster_grid[1]}')
            if (batch, name) not in macs_of:
                with torch.no_grad():
                    macs_of[batch, name] = b.macs(lambda: model(img))
            macs = macs_of[batch, name]
            row = dict(batch=batch, size=f'{W}x{H}', compiled=compiled, setting=name,
                       gmacs=macs / 1e9, images_per_s=batch / (r['ms'] * 1e-3),
                       sdpa_kernels=kernels, **r)
            if s is None:
                base = row
            else:
                x = torch.randn(batch, 1 + grid[0] * grid[1], model.vit.embed_dims,
                                device=b.device)
                logits = torch.randn(batch, s.cluster_grid[0] * s.cluster_grid[1],
                                     cfg['num_classes'], device=b.device)

                def cluster_and_reconstruct(x=x, logits=logits, s=s):
                    _, _, _, w = cluster_sequence(x, 1, grid, s)
                    reconstruct_tokens(logits, w)
                with torch.no_grad():
                    c = b.measure(cluster_and_reconstruct)
                row.update(cluster_recon_ms=c['ms'], cluster_recon_share=c['ms'] / r['ms'])
            row['mac_ratio'] = row['gmacs'] / base['gmacs']
            row['speedup'] = base['ms'] / row['ms']
            rows.append(row)
    model.expedite = None
    return rows


# ---------------------------------------------------------------------------- flow
def bench_flow(b: Bench, cfg: dict) -> list[dict]:
    torch.manual_seed(0)
    net = CroCoFlowNet(**FLOW_ARCHS[cfg['arch']]).to(b.device).eval()
    H, W = cfg['size']
    img1 = torch.randn(1, 3, H, W, device=b.device)
    img2 = torch.randn(1, 3, H, W, device=b.device)
    rows = []
    with torch.no_grad():
        one = b.measure(lambda: net(img1, img2))
        rows.append(dict(what='one pass', arch=cfg['arch'], size=f'{W}x{H}', **one))
        tile = (min(cfg['tile'][0], H), min(cfg['tile'][1], W))
        tiled = b.measure(lambda: tiled_flow(net, img1, img2, tile, cfg['overlap']))
        rows.append(dict(what=f'tiled {tile[1]}x{tile[0]}, overlap {cfg["overlap"]:g}',
                         arch=cfg['arch'], size=f'{W}x{H}', **tiled))
    rows[1]['slowdown_vs_one_pass'] = rows[1]['ms'] / rows[0]['ms']
    return rows


# -------------------------------------------------------------------------- report
def environment(b: Bench, smoke: bool) -> dict:
    env = dict(torch=torch.__version__, python=platform.python_version(), device=str(b.device),
               dtype=b.dtype_name, autocast=b.dtype != torch.float32, smoke=smoke,
               warmup=b.warmup, repeats=b.repeats, threads=torch.get_num_threads(),
               cuda=torch.version.cuda,
               tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
               time=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))
    if b.device.type == 'cuda':
        name = torch.cuda.get_device_name(b.device)
        env['device_name'] = name
        peak = next((v for (k, dt), v in PEAK_TFLOPS.items() if k in name and dt == b.dtype_name),
                    None)
        env['peak_tflops'] = peak
        env['peak_tflops_source'] = ('NVIDIA H200 datasheet, dense (no sparsity) '
                                     f'{b.dtype_name} tensor-core peak' if peak else 'unknown')
    else:
        env['device_name'] = platform.processor() or 'cpu'
        env['peak_tflops'] = None
        env['peak_tflops_source'] = 'no peak figure for a CPU'
    return env


def markdown(res: dict) -> str:
    env = res['environment']
    mem = 'peak CUDA allocated' if env['device'].startswith('cuda') else 'CPU peak RSS growth'
    lines = [f"# mmwinwin device benchmark{' (smoke)' if env['smoke'] else ''}", '',
             f"torch {env['torch']} (CUDA {env['cuda']}), {env['device_name']} ({env['device']}), "
             f"dtype {env['dtype']} (autocast {env['autocast']}), median of {env['repeats']} "
             f"after {env['warmup']} warm-up; peak {env['peak_tflops']} TFLOP/s "
             f"({env['peak_tflops_source']}).", '']
    sdpa = res.get('sdpa_available')
    if sdpa:
        lines += ['SDPA backends for the measured shapes: '
                  + ', '.join(f'{k}: {v}' for k, v in sdpa.items()), '']
    if res.get('winwin'):
        lines += ['## Win-Win vs full resolution, one training step (fwd + bwd + AdamW)', '',
                  '| arch | input | batch | compiled | windows | ms Win-Win | ms full | time ratio '
                  f'| {mem} MiB Win-Win | full | memory ratio | full step TFLOP/s | '
                  'fwd ms | fwd GMACs | fwd TFLOP/s | fwd % of peak | SDPA kernel |',
                  '|' + '---|' * 17]
        for r in res['winwin']:
            f = r.get('forward')
            pct = (f"{100 * f['tflops'] / env['peak_tflops']:.1f}" if f and env['peak_tflops']
                   else '-')
            lines.append(
                f"| {r['arch']} | {r['size']} | {r['batch']} | {r['compiled']} | {r['windows']} | "
                f"{r['winwin']['ms']:.1f} | {r['fullres']['ms']:.1f} | "
                f"{r['time_ratio_full_over_winwin']:.2f}x | {r['winwin']['growth_mib']:.0f} | "
                f"{r['fullres']['growth_mib']:.0f} | {r['memory_ratio_full_over_winwin']:.2f}x | "
                + (f"{r['fullres']['tflops']:.3g} | {f['ms']:.1f} | {f['gmacs']:.4g} | "
                   f"{f['tflops']:.3g} | {pct} | {r['sdpa_kernels']} |" if f else
                   '- | - | - | - | - | - |'))
        lines.append('')
    if res.get('expedite'):
        lines += ['## Expedite, Segmenter-shaped ViT (reconstruction on the logits)', '',
                  '| batch | compiled | setting | GMACs | MAC ratio | ms | images/s | speed-up | '
                  'clust.+recon. ms | share | peak MiB | SDPA kernel |', '|' + '---|' * 12]
        for r in res['expedite']:
            share = (f"{r['cluster_recon_ms']:.2f} | {100 * r['cluster_recon_share']:.1f} %"
                     if 'cluster_recon_ms' in r else '- | -')
            lines.append(f"| {r['batch']} | {r['compiled']} | {r['setting']} | {r['gmacs']:.4g} | "
                         f"{r['mac_ratio']:.3f} | {r['ms']:.2f} | {r['images_per_s']:.2f} | "
                         f"{r['speedup']:.2f}x | {share} | {r['peak_mib']:.0f} | "
                         f"{r['sdpa_kernels'] or '-'} |")
        lines.append('')
    if res.get('flow'):
        lines += ['## Flow, one pass vs tiled (inference)', '',
                  f'| what | arch | input | ms | {mem} MiB |', '|---|---|---|---|---|']
        for r in res['flow']:
            lines.append(f"| {r['what']} | {r['arch']} | {r['size']} | {r['ms']:.1f} | "
                         f"{r['growth_mib']:.0f} |")
        lines.append('')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', help='folder for results.json and results.md')
    p.add_argument('--smoke', action='store_true',
                   help='the same code paths at tiny sizes (CPU, seconds), for CI')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--dtype', default='bf16', choices=sorted(DTYPES))
    p.add_argument('--compile', action='store_true',
                   help='also measure the training steps and Expedite under torch.compile')
    p.add_argument('--warmup', type=int, default=None, help='default 3 (smoke: 1)')
    p.add_argument('--repeats', type=int, default=None, help='default 10 (smoke: 1)')
    p.add_argument('--parts', nargs='+', default=['winwin', 'expedite', 'flow'],
                   choices=['winwin', 'expedite', 'flow'])
    p.add_argument('--batch', type=int, default=1, help='batch of the Win-Win training steps')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s; smoke: 1, steady on a shared CPU)')
    a = p.parse_args(argv)
    a.device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    a.warmup = (1 if a.smoke else 3) if a.warmup is None else a.warmup
    a.repeats = (1 if a.smoke else 10) if a.repeats is None else a.repeats
    if a.smoke and a.threads is None:
        a.threads = 1
    return a


def main(argv=None) -> dict:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    b = Bench(a)
    cfg = SMOKE if a.smoke else FULL
    os.makedirs(a.out_dir, exist_ok=True)
    res = dict(environment=environment(b, a.smoke))
    vit = RoPEVisionTransformer(arch=cfg['winwin'][-1][0])
    res['sdpa_available'] = probe_sdpa(
        b.device, b.dtype, a.batch, vit.num_heads,
        (cfg['winwin'][-1][1][0] // 16) * (cfg['winwin'][-1][1][1] // 16),
        vit.embed_dims // vit.num_heads)
    del vit
    compile_modes = (False, True) if a.compile else (False,)

    def save():
        with open(osp.join(a.out_dir, 'results.json'), 'w') as f:
            json.dump(res, f, indent=1)
        with open(osp.join(a.out_dir, 'results.md'), 'w') as f:
            f.write(markdown(res) + '\n')

    t0 = time.perf_counter()
    if 'winwin' in a.parts:
        res['winwin'] = []
        for compiled in compile_modes:
            for arch, size, n, s in cfg['winwin']:
                res['winwin'].append(bench_winwin(b, arch, size, n, s, a.batch, compiled))
                print(f"[{time.perf_counter() - t0:6.1f}s] winwin {arch_name(arch)} {size} "
                      f"compiled={compiled}: full/Win-Win "
                      f"{res['winwin'][-1]['time_ratio_full_over_winwin']:.2f}x", flush=True)
                save()
    if 'expedite' in a.parts:
        res['expedite'], macs_of = [], {}
        for compiled in compile_modes:
            res['expedite'] += bench_expedite(b, cfg['expedite'], compiled, macs_of)
            print(f'[{time.perf_counter() - t0:6.1f}s] expedite compiled={compiled}', flush=True)
            save()
    if 'flow' in a.parts:
        res['flow'] = bench_flow(b, cfg['flow'])
        print(f'[{time.perf_counter() - t0:6.1f}s] flow', flush=True)
    res['environment']['total_s'] = time.perf_counter() - t0
    save()
    print(markdown(res))
    print(f'wrote {osp.join(a.out_dir, "results.json")} and results.md')
    return res


if __name__ == '__main__':
    main()
