"""Accuracy of Expedite without fine-tuning: one checkpoint, baseline vs settings.

    python -m mmwinwin.experiments.expedite_accuracy CONFIG CHECKPOINT --settings 4:s0.7 3:s0.7 2:s0.5 \
        [--window 5] [--k 20] [--temperature 0.02] [--iters 5] [--placement backbone]
        [--out work_dirs/expedite_accuracy.md]

CONFIG is a plain mmseg / mmwinwin segmentation config (backbone ``VisionTransformer``
or ``RoPEViT``) and CHECKPOINT its trained weights. For the baseline and every
``ALPHA:HxW`` / ``ALPHA:sSCALE`` setting (optionally ``:tT`` for its own temperature,
``:former`` for mmwinwin's former local operators instead of the official ones,
``:OPTION=VALUE`` for one of them, e.g. ``:empty_cluster=keep``),
the backbone is swapped for its expedited
twin (same keys; the checkpoint is loaded strictly) and mmengine's test loop runs on the
config's test set. Prints and writes a table of mIoU, GMACs (multiply-accumulates of
one test-size forward, counted as in ``tools/analysis_tools/benchmark_expedite.py``) and
the test loop's images/s.
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import torch

from mmwinwin.utils.benchmark import count_macs

EXPEDITED = {'VisionTransformer': 'ExpeditedMMSegViT', 'RoPEViT': 'ExpeditedRoPEViT',
             'ExpeditedMMSegViT': 'ExpeditedMMSegViT', 'ExpeditedRoPEViT': 'ExpeditedRoPEViT'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--settings', nargs='+', required=True)
    p.add_argument('--window', type=int, default=5)
    p.add_argument('--k', type=int, default=20)
    p.add_argument('--temperature', type=float, default=0.02)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--placement', default='backbone', choices=['backbone', 'logits'])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default=None, help='write the markdown table here')
    return p.parse_args(argv)


def setting_dict(text: str, args) -> dict:
    """``ALPHA:GRID[:tT][:former][:OPTION=VALUE ...]`` -> expedite dict; ``former`` selects
    mmwinwin's former local operators (``ExpediteSettings.previous_local``) instead of the
    official ones, ``OPTION=VALUE`` one operator option (e.g. ``empty_cluster=keep``)."""
    from mmwinwin.layers.expedite.plugin import OPTIONS, PREVIOUS_LOCAL
    alpha, grid, *extra = text.split(':')
    temp = [e for e in extra if e.startswith('t') and '=' not in e]
    options = dict(e.split('=', 1) for e in extra if '=' in e)
    unknown = [e for e in extra if e not in temp and '=' not in e and e != 'former']
    unknown += [f'{k}={v}' for k, v in options.items()
                if k not in OPTIONS or v not in OPTIONS[k]]
    if unknown or len(temp) > 1:
        raise ValueError(f'Setting {text!r}: expected ALPHA:GRID[:tT][:former][:OPTION=VALUE], '
                         f'e.g. 3:11x11:t1.0:former or 1:6x12:empty_cluster=keep, with options '
                         f'{OPTIONS}; could not read {unknown or temp}.')
    d = dict(alpha=int(alpha), iters=args.iters, window=args.window,
             temperature=float(temp[0][1:]) if temp else args.temperature, k=args.k,
             reconstruct=args.placement)
    if 'former' in extra:
        d.update(PREVIOUS_LOCAL)
    d.update(options)
    if grid.startswith('s'):
        d['cluster_scale'] = float(grid[1:])
    else:
        h, w = grid.lower().split('x')
        d['cluster_grid'] = (int(h), int(w))
    return d


def evaluate(cfg, checkpoint: str, expedite: dict | None) -> dict:
    from mmengine.runner import Runner

    from mmwinwin.utils import load_checkpoint_strict
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    if bb.type not in EXPEDITED:
        raise KeyError(f'Backbone {bb.type!r} has no expedited twin; supported: '
                       f'{sorted(EXPEDITED)}.')
    bb.type = EXPEDITED[bb.type]
    bb.expedite = expedite
    bb.pop('init_cfg', None)
    cfg.model.pretrained = None
    if expedite and expedite['reconstruct'] == 'logits':
        cfg.model.type = 'ExpeditedEncoderDecoder'
    cfg.work_dir = tempfile.mkdtemp(prefix='expedite_acc_')
    cfg.load_from = None
    cfg.default_hooks.pop('visualization', None)
    runner = Runner.from_cfg(cfg)
    load_checkpoint_strict(runner.model, checkpoint)
    n = len(runner.test_dataloader.dataset)
    t0 = time.perf_counter()
    metrics = runner.test()
    seconds = time.perf_counter() - t0
    model = runner.model.eval()
    ds = runner.test_dataloader.dataset
    sample = runner.test_dataloader.collate_fn([ds[0]])
    data = model.data_preprocessor(sample, False)
    img = data['inputs']
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        macs, _ = count_macs(lambda: model.encode_decode(img, metas))
    return dict(mIoU=float(metrics.get('mIoU', float('nan'))),
                aAcc=float(metrics.get('aAcc', float('nan'))), gmacs=macs / 1e9,
                images_per_s=n / seconds, images=n)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from mmengine.config import Config

    import mmwinwin  # noqa: F401
    from mmwinwin.layers.expedite.plugin import OPTIONS
    cfg = Config.fromfile(args.config)
    rows = [('baseline', evaluate(cfg, args.checkpoint, None))]
    for text in args.settings:
        s = setting_dict(text, args)
        name = f'alpha={s["alpha"]}, ' + (f'scale {s["cluster_scale"]}' if 'cluster_scale' in s
                                          else '{}x{}'.format(*s['cluster_grid']))
        if s['temperature'] != args.temperature:
            name += f', t={s["temperature"]}'
        if 'former' in text.split(':'):
            name += ', former local operators'
        else:
            name += ''.join(f', {k}={v}' for k, v in s.items() if k in OPTIONS) or ', official'
        rows.append((name, evaluate(cfg, args.checkpoint, s)))
    b = rows[0][1]
    lines = [f'`{os.path.basename(args.config)}`, one checkpoint, no fine-tuning; window '
             f'{args.window}, k {args.k}, t {args.temperature}, {args.iters} iterations, '
             f'reconstruction: {args.placement}; {b["images"]} test images.', '',
             '| setting | mIoU | delta | aAcc | GMACs | GMACs ratio | test img/s |',
             '|---|---|---|---|---|---|---|']
    for name, r in rows:
        lines.append(f'| {name} | {r["mIoU"]:.2f} | {r["mIoU"] - b["mIoU"]:+.2f} | '
                     f'{r["aAcc"]:.2f} | {r["gmacs"]:.3f} | {r["gmacs"] / b["gmacs"]:.3f} | '
                     f'{r["images_per_s"]:.1f} |')
    table = '\n'.join(lines)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
