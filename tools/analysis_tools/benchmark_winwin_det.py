"""Cost of one Win-Win Mask R-CNN training step against full-resolution training.

Issue 14 item 5: Mask R-CNN with a ViTDet-style RoPE ViT-B/16 at 1024x1024 (ViTDet's LSJ
recipe), one training step = data preprocessor + forward + backward + optimizer step
(``model.train_step``, what mmengine's training loop calls), Win-Win against full
resolution, measured in the same run:

* the models are built from the real configs: the full-resolution config
  (``--config``) and its Win-Win twin (``--winwin-config``, by default the
  ``winwin-*`` file beside it), with the configs' own optimizer wrappers;
* the batch is synthetic (generated here, seeded): a random image with a few instances
  (boxes and filled-ellipse bitmap masks, random COCO classes), in the form mmdet's
  ``LoadAnnotations`` leaves it after the geometric augmentations; the Win-Win batch then
  goes through the twin's training pipeline from its ``WinWinWindows`` transform on (fresh
  windows every step, as a dataloader draws them), the full-resolution batch through the
  config's packer; both through their model's real data preprocessor (inside
  ``train_step``);
* time: one process builds both models and alternates them step by step (``--repeats``
  timed steps each after ``--warmup``; min and median seconds), so machine contention
  hits both alike (:func:`mmwinwin.utils.benchmark.time_fn`); the process CPU time of each
  step is reported too (less sensitive to other jobs on a shared machine);
* memory: one process per model (glibc's mmap threshold pinned through
  ``MALLOC_MMAP_THRESHOLD_`` so the resident set follows live tensors), one step after a
  warm-up (which also creates the AdamW state), the peak resident set during the step
  minus the resident set before it: activations, gradients and temporaries; weights and
  optimizer state, the same in both modes, are excluded
  (:class:`mmwinwin.utils.benchmark.PeakMemory`).

``--window-size 28 24 21`` compares several Win-Win window sizes in the same run (the
twin's samples per window stay as configured).

``--profile`` instead runs one step of each mode under ``torch.profiler`` (one process) and
splits it by component: the data preprocessor, backbone, window cropping, neck, RPN
convolutions, RPN targets / proposals, RoI sampling and losses, box / mask RoIAlign and heads,
optimizer (:func:`label_components` names them; :func:`attribute_events` gives each op's self
time to the innermost named range, and a backward op to the component whose forward op
created its autograd node).

    python tools/analysis_tools/benchmark_winwin_det.py --threads 2     # ViT-B, 1024
    python tools/analysis_tools/benchmark_winwin_det.py --window-size 28 24 21
    python tools/analysis_tools/benchmark_winwin_det.py --threads 1 --profile
    python tools/analysis_tools/benchmark_winwin_det.py --smoke         # tiny, 128 px

``--smoke`` takes the tiny Mask R-CNN of
``configs/vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py`` and its Win-Win
twin at 128x128, one repeat, one thread, everything in one process: a fast check that the
whole benchmark runs (its figures are no measurement).
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

FULL_CONFIG = 'configs/vitdet/mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py'
TINY_CONFIG = 'configs/vitdet/mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py'
WINDOW_TRANSFORMS = ('WinWinWindows', 'mmwinwin.WinWinWindows')


def winwin_twin(config: str) -> str:
    """The Win-Win twin of a full-resolution config: ``winwin-*_<name>`` beside it."""
    folder, name = os.path.split(config)
    found = sorted(glob.glob(os.path.join(folder, f'winwin-*_{name}')))
    if not found:
        raise FileNotFoundError(
            f'No Win-Win twin of {config} (looked for {os.path.join(folder, "winwin-*_" + name)}'
            '); pass --winwin-config.')
    return found[0]


# ----------------------------------------------------------------------------- models
def load_config(path: str):
    from mmengine.config import Config
    return Config.fromfile(path)


def build_model(cfg, seed: int = 0):
    """The config's model (seeded initialisation) and optimizer wrapper, in train mode."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    import mmwinwin  # noqa: F401  (registers mmwinwin's modules)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def pipeline_tail(cfg, winwin: bool, window_size: int | None, num_windows: int | None,
                  patch_size: int):
    """The transforms a synthetic (already augmented) sample still goes through: for
    Win-Win the training pipeline from its window transform on (window size / count
    overridden when given, patch size the backbone's), else the final packer."""
    from mmcv.transforms import Compose
    dataset = cfg.train_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:  # RepeatDataset etc.
        dataset = dataset.dataset
    pipeline = copy.deepcopy(list(dataset.pipeline))
    if not winwin:
        return Compose(pipeline[-1:])
    starts = [i for i, t in enumerate(pipeline) if t['type'] in WINDOW_TRANSFORMS]
    if not starts:
        raise ValueError('The Win-Win config has no WinWinWindows transform in its training '
                         f'pipeline ({[t["type"] for t in pipeline]}); pass its Win-Win twin.')
    tail = pipeline[starts[0]:]
    win = tail[0]
    win['patch_size'] = patch_size
    win['seed'] = 0
    if window_size is not None:
        win.pop('token_budget', None)
        win['window_size'] = window_size
    if num_windows is not None:
        win['num_windows'] = num_windows
    return Compose(tail)


def synthetic_results(size: int, rng: np.random.Generator, num_instances: int = 8,
                      num_classes: int = 80) -> dict:
    """One augmented COCO-like training sample as mmdet's loading transforms leave it."""
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    boxes, masks = [], []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(num_instances):
        w, h = rng.uniform(0.05, 0.4, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        boxes.append([x0, y0, x0 + w, y0 + h])
        cx, cy = x0 + w / 2, y0 + h / 2
        masks.append((((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1)
                     .astype(np.uint8))
    return dict(
        img=img, img_shape=(size, size), ori_shape=(size, size), img_path='synthetic',
        img_id=0, scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
        gt_bboxes=HorizontalBoxes(np.asarray(boxes, np.float32)),
        gt_bboxes_labels=rng.integers(0, num_classes, num_instances).astype(np.int64),
        gt_ignore_flags=np.zeros(num_instances, bool),
        gt_masks=BitmapMasks(np.stack(masks), size, size))


def make_batches(tail, count: int, batch_size: int, size: int, num_classes: int,
                 seed: int) -> list[dict]:
    """``count`` batches of ``batch_size`` samples through ``tail`` (fresh windows each)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        packed = [tail(synthetic_results(size, rng, num_classes=num_classes))
                  for _ in range(batch_size)]
        batches.append(dict(inputs=[p['inputs'] for p in packed],
                            data_samples=[p['data_samples'] for p in packed]))
    return batches


def kept_tokens(batch: dict, size: int, patch: int) -> tuple[int, str]:
    """Backbone tokens per image and what they are: the windows' when the sample has
    any (e.g. ``'2x24x24'``), else the whole grid's (``'64x64'``)."""
    meta = batch['data_samples'][0].metainfo
    if 'winwin_windows' in meta:
        wins = meta['winwin_windows']
        sides = sorted({(h, w) for _, _, h, w in wins})
        what = ' + '.join(f'{sum((h, w) == s for _, _, h, w in wins)}x{s[0]}x{s[1]}'
                          for s in sides)
        return sum(h * w for _, _, h, w in wins), what
    g = -(-size // patch)
    return g * g, f'{g}x{g}'


# ----------------------------------------------------------------------- measurement
class Mode:
    """One model under test: its name, model, optimizer wrapper and per-step batches."""

    def __init__(self, name, model, optim, batches, tokens, windows):
        self.name, self.model, self.optim = name, model, optim
        self.batches, self.tokens, self.windows, self.calls = batches, tokens, windows, 0

    def step(self) -> None:
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        self.model.train_step(batch, self.optim)


def build_modes(args, which: list[str]) -> list[Mode]:
    """``which``: ``'fullres'`` and / or ``'winwin:S'`` (window side S; ``'winwin:'``: the
    config's own). One Win-Win model serves every window size (same weights)."""
    steps = args.warmup + args.repeats
    modes, built = [], {}
    for name in which:
        winwin = name.startswith('winwin')
        cfg = load_config(args.winwin_config if winwin else args.config)
        if winwin:  # a window step; the recipe's phase steps are the host's whole-image loss,
            cfg.model.full_image_phase = None  # a full-resolution step
        if winwin not in built:
            built[winwin] = build_model(cfg)
        model, optim = built[winwin]
        if winwin and not type(model).__name__.startswith('WinWin'):
            raise TypeError(f'{args.winwin_config} builds a {type(model).__name__}, which trains '
                            'on whole images; pass a Win-Win twin (model type '
                            "'WinWinTwoStageDetector').")
        patch = int(model.backbone.patch_size)
        ws = name.split(':', 1)[1] if winwin else ''
        tail = pipeline_tail(cfg, winwin, int(ws) if ws else None, args.num_windows, patch)
        num_classes = int(model.roi_head.bbox_head.num_classes)
        batches = make_batches(tail, steps, args.batch_size, args.size, num_classes, seed=1)
        modes.append(Mode(name, model, optim, batches,
                          *kept_tokens(batches[0], args.size, patch)))
    return modes


def measure_time(modes: list[Mode], warmup: int, repeats: int) -> dict:
    """Warm every mode up, then time ``repeats`` rounds of one step of each mode in turn."""
    from mmwinwin.utils.benchmark import Timing, time_fn
    timings = {m.name: Timing() for m in modes}
    for m in modes:
        for _ in range(warmup):
            m.step()
    for _ in range(repeats):  # alternate: one step of each mode per round
        for m in modes:
            time_fn(m.step, 'cpu', warmup=0, repeats=1, timing=timings[m.name])
    return {m.name: dict(tokens=m.tokens, windows=m.windows, **timings[m.name].as_dict())
            for m in modes}


def measure_memory(mode: Mode, warmup: int) -> dict:
    """Peak resident-set increase during one step, after ``warmup`` steps (at least one:
    the AdamW state must exist before, as in a training run)."""
    from mmwinwin.utils.benchmark import PeakMemory
    for _ in range(max(1, warmup)):
        mode.step()
    with PeakMemory('cpu') as mem:
        mode.step()
    return dict(tokens=mode.tokens, windows=mode.windows, peak_growth_bytes=mem.growth_bytes,
                peak_rss_bytes=mem.peak_bytes, memory_method=mem.method)



# ------------------------------------------------------------------------- profile
PROFILE_PREFIX = 'step/'
OTHER = 'other (loss sum, window stacking, glue)'
OPTIMIZER = 'optimizer step (AdamW + zero_grad)'


def _labelled(label: str, fn):
    """``fn`` inside a ``torch.profiler.record_function`` range named ``label``."""
    from torch.profiler import record_function

    def run(*args, **kwargs):
        with record_function(PROFILE_PREFIX + label):
            return fn(*args, **kwargs)
    return run


def label_components(mode: Mode) -> None:
    """Name the step's components for the profiler: each callable below runs inside a
    ``record_function`` range (the innermost range names an op). Instance attributes
    only; the classes are untouched."""
    model, roi = mode.model, mode.model.roi_head
    if getattr(model, '_profile_labelled', False):  # one model serves several modes
        return
    targets = [
        (model.data_preprocessor, 'forward', 'data preprocessor'),
        (model.backbone, 'forward', 'backbone'),
        (model.backbone, 'forward_tokens', 'backbone'),
        (model.backbone.patch_embed, 'forward', 'backbone'),
        (model, 'window_batches', 'window targets (crop per window)'),
        (model.neck, 'forward', 'neck (SimpleFPN)'),
        (model.rpn_head, 'forward', 'RPN head convs'),
        (model.rpn_head, 'loss_and_predict', 'RPN anchor targets, loss, proposals (NMS)'),
        (roi, 'loss', 'RoI assign, sample, targets, losses'),
        (roi.bbox_roi_extractor, 'forward', 'box RoIAlign'),
        (roi.bbox_head, 'forward', 'box head (4 conv + fc)'),
        (mode.optim, 'step', OPTIMIZER),
        (mode.optim, 'zero_grad', OPTIMIZER)]
    if getattr(roi, 'with_mask', False):
        targets += [(roi.mask_roi_extractor, 'forward', 'mask RoIAlign'),
                    (roi.mask_head, 'forward', 'mask head (4 conv + deconv)')]
    for obj, name, label in targets:
        if hasattr(obj, name):
            setattr(obj, name, _labelled(label, getattr(obj, name)))
    model._profile_labelled = True


def attribute_events(events) -> dict:
    """``{component: {'fwd': ms, 'bwd': ms}}`` from a profile's CPU events: every op's
    self time goes to the innermost labelled range around it (forward), or, inside the
    autograd engine, to the range of the forward op with the same sequence number (its
    backward). Self time of a range (Python between ops) counts as its forward."""
    from collections import defaultdict
    fwd_label: dict = {}
    out: dict = defaultdict(lambda: {'fwd': 0.0, 'bwd': 0.0})
    for ev in sorted(events, key=lambda e: e.time_range.start):
        cur, comp, phase = ev, OTHER, 'fwd'
        while cur is not None:
            if cur.name.startswith('autograd::engine::evaluate_function'):
                comp, phase = fwd_label.get(cur.sequence_nr, OTHER), 'bwd'
                break
            if cur.name.startswith(PROFILE_PREFIX):
                comp = cur.name[len(PROFILE_PREFIX):]
                break
            cur = cur.cpu_parent
        if phase == 'fwd' and ev.sequence_nr >= 0:
            fwd_label[ev.sequence_nr] = comp
        out[comp][phase] += ev.self_cpu_time_total / 1e3
    return dict(out)


def measure_profile(modes: list[Mode], warmup: int) -> dict:
    """One profiled step of each mode (after ``warmup`` steps): ms per component."""
    import time
    from torch.profiler import ProfilerActivity, profile
    results = {}
    for m in modes:
        label_components(m)
        for _ in range(max(1, warmup)):
            m.step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0, c0 = time.perf_counter(), time.process_time()
            m.step()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        results[m.name] = dict(tokens=m.tokens, windows=m.windows, wall_s=wall, cpu_s=cpu,
                               components=attribute_events(prof.events()))
    return results


def profile_report(args, results: dict) -> str:
    """Markdown table: per component, forward / backward ms and share of each mode."""
    names = list(results)
    comps = []
    for r in results.values():
        comps += [c for c in r['components'] if c not in comps]
    totals = {n: sum(v['fwd'] + v['bwd'] for v in results[n]['components'].values())
              for n in names}
    order = sorted(comps, key=lambda c: -sum(results[names[0]]['components'].get(
        c, {'fwd': 0, 'bwd': 0}).values()))
    head = ' | '.join(f'{label(n, results[n])}: fwd ms | bwd ms | share' for n in names)
    lines = [f'One profiled training step per mode (torch.profiler, CPU, threads '
             f'{args.threads}, {args.size}x{args.size}, batch {args.batch_size}); ms of '
             'CPU ops on the main thread, backward attributed to its forward component',
             '', f'| component | {head} |',
             '|---|' + '---:|---:|---:|' * len(names)]
    for c in order + ['total']:
        cells = []
        for n in names:
            if c == 'total':
                v = {'fwd': sum(x['fwd'] for x in results[n]['components'].values()),
                     'bwd': sum(x['bwd'] for x in results[n]['components'].values())}
            else:
                v = results[n]['components'].get(c, {'fwd': 0.0, 'bwd': 0.0})
            share = (v['fwd'] + v['bwd']) / max(totals[n], 1e-9)
            cells.append(f"{v['fwd']:.0f} | {v['bwd']:.0f} | {100 * share:.1f} %")
        lines.append(f"| {'**total**' if c == 'total' else c} | {' | '.join(cells)} |")
    lines.append('')
    lines.append('Profiled step (wall clock / process CPU time; their ratio shows the '
                 'contention on a shared machine): ' + ', '.join(
                     f"{label(n, results[n])} {results[n]['wall_s']:.1f} s / "
                     f"{results[n]['cpu_s']:.1f} s" for n in names))
    return '\n'.join(lines)


def child(args, measure: str, names: list[str]) -> dict:
    """Run one measurement in a fresh process of this script; returns its JSON."""
    env = dict(os.environ)
    if measure == 'memory':
        env['MALLOC_MMAP_THRESHOLD_'] = '131072'
    cmd = [sys.executable, os.path.abspath(__file__), *args.argv, '--measure', measure,
           '--modes', ','.join(names)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        sys.exit(f'{measure} run of {names} failed (exit {proc.returncode}):\n'
                 f'{proc.stderr[-4000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def label(name: str, result: dict) -> str:
    if name == 'fullres':
        return 'full resolution'
    return f"Win-Win {result['windows']}"


def report(args, results: dict) -> str:
    full = results['fullres']
    mib = 2 ** 20
    lines = [f"Mask R-CNN + RoPE ViTDet ({os.path.basename(args.config)}), "
             f'{args.size}x{args.size}, batch {args.batch_size}, CPU, threads {args.threads}; '
             f'time: {args.repeats} alternated steps per mode after {args.warmup} warm-up '
             '(forward + backward + optimizer step); memory: peak RSS increase during one '
             'step after warm-up (own process per mode)',
             '',
             '| mode | backbone tokens / image | s / step (min) | s / step (median) | '
             'CPU s / step (median) | peak memory (MiB) | speed-up (median wall) | '
             'speed-up (median CPU) | memory ratio |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for name, r in results.items():
        speed = full['median_s'] / r['median_s']
        cpu = full['cpu_median_s'] / r['cpu_median_s']
        mem = full['peak_growth_bytes'] / max(1, r['peak_growth_bytes'])
        lines.append(f"| {label(name, r)} | {r['tokens']} | {r['min_s']:.2f} | "
                     f"{r['median_s']:.2f} | {r['cpu_median_s']:.2f} | "
                     f"{r['peak_growth_bytes'] / mib:.0f} | {speed:.2f}x | {cpu:.2f}x | "
                     f'{mem:.2f}x |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=None,
                        help=f'full-resolution config (default {FULL_CONFIG}; with --smoke '
                             f'{TINY_CONFIG})')
    parser.add_argument('--winwin-config', default=None,
                        help='its Win-Win twin (default: winwin-*_<config name> beside it)')
    parser.add_argument('--window-size', type=int, nargs='+', default=None,
                        help='Win-Win window side(s) in tokens (default: the twin config\'s)')
    parser.add_argument('--num-windows', type=int, default=None,
                        help='windows per image (default: the twin config\'s)')
    parser.add_argument('--size', type=int, default=None, help='image side (default 1024)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=None, help='timed steps per mode (3)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default 2; 1 with --smoke)')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny model, 128x128, one repeat (a fast check)')
    parser.add_argument('--out', default=None, help='also write the results as JSON here')
    parser.add_argument('--profile', action='store_true',
                        help='instead of timing: one torch.profiler step per mode, ms per '
                             'component (backbone, neck, RPN, RoI heads, optimizer, ...)')
    parser.add_argument('--measure', choices=['time', 'memory'], help=argparse.SUPPRESS)
    parser.add_argument('--modes', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv)]
    if args.size is None:
        args.size = 128 if args.smoke else 1024
    if args.threads is None:
        args.threads = 1 if args.smoke else 2
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    if args.config is None:
        args.config = TINY_CONFIG if args.smoke else FULL_CONFIG
    args.config = os.path.join(ROOT, args.config) if not os.path.isabs(args.config) \
        else args.config
    if args.winwin_config is None:
        args.winwin_config = winwin_twin(args.config)
    for name in ('repeats', 'threads', 'batch_size', 'size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    return args


def quiet_logs() -> None:
    """Keep mmengine's per-parameter init / optimizer logs out of the benchmark's output."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_winwin_det', log_level='WARNING')


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = ['fullres'] + [f'winwin:{s}' for s in (args.window_size or [''])]
    if args.measure:  # child process: one measurement, printed as JSON
        quiet_logs()
        names = args.modes.split(',')
        modes = build_modes(args, names)
        out = measure_time(modes, args.warmup, args.repeats) if args.measure == 'time' \
            else measure_memory(modes[0], args.warmup)
        print('RESULT ' + json.dumps(out))
        return
    print(f'full resolution: {os.path.relpath(args.config, ROOT)}\n'
          f'Win-Win:         {os.path.relpath(args.winwin_config, ROOT)}', flush=True)
    if args.profile:  # one process, both modes, one profiled step each
        quiet_logs()
        results = measure_profile(build_modes(args, names), args.warmup)
        table = profile_report(args, results)
        print('\n' + table)
        save(args, results, table)
        return
    if args.smoke:  # one process, default allocator: a check that everything runs
        quiet_logs()
        modes = build_modes(args, names)
        results = measure_time(modes, args.warmup, args.repeats)
        for m in modes:
            results[m.name].update(measure_memory(m, 0))
    else:
        print(f'timing {names} (alternated, one process) ...', flush=True)
        results = child(args, 'time', names)
        save(args, results, table=None)  # kept even if a memory run fails
        for name in names:
            print(f'peak memory of {name} (own process) ...', flush=True)
            results[name].update(child(args, 'memory', [name]))
    table = report(args, results)
    print('\n' + table)
    save(args, results, table)


def save(args, results: dict, table: str | None) -> None:
    """Write the results (and the table, once complete) to ``--out`` as JSON."""
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, winwin_config=args.winwin_config,
                           results=results, table=table), f, indent=1)


if __name__ == '__main__':
    main()
