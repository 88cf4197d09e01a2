"""Why does Win-Win fall behind full resolution when labels need distant context?

Measures, on the generated long-range task of ``winwin_reproduction`` (object classes
depend on a small scene beacon placed anywhere in the image):

1. **cue coverage** — how often a training sample's windows hold the beacon, an object, both;
   and which share of the supervised object pixels comes with the beacon visible;
2. trains Win-Win and full resolution (same iterations, seed) and, for each model:
   - **whole-image vs window-only evaluation** on the same pixels of the validation images
     (the windows of a fixed draw), split by whether the beacon lies inside the windows;
   - **per-class IoU** on whole images (which classes fail);
   - **attention entropy** per layer with the training token count (2 windows) and the test
     token count (whole image), also normalised by log(N);
   - **head normalisation statistics**: the decode head's BatchNorm running statistics
     (accumulated on window grids for Win-Win) against the batch statistics of the same layers
     on whole validation images (mean shift in running std units, variance ratio).

Prints a markdown report (``--out`` writes it and a JSON of every figure).

    python -m mmwinwin.experiments.winwin_diagnose --iters 1200 --out /tmp/diag
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import tempfile
from collections import defaultdict

import numpy as np

from .reproduction import build_cfg

PATCH = 16


def beacon_mask(img_rgb: np.ndarray) -> np.ndarray:
    """The beacon's pixels: the only saturated colour in the generated images (everything
    else is grey texture plus small per-channel noise)."""
    img = img_rgb.astype(np.int32)
    return (img.max(-1) - img.min(-1)) > 100


def window_pixel_mask(shape, windows) -> np.ndarray:
    m = np.zeros(shape, bool)
    for t, l, h, w in windows:
        m[t * PATCH:(t + h) * PATCH, l * PATCH:(l + w) * PATCH] = True
    return m


def cue_coverage(data_root: str, window: int, draws: int, seed: int) -> dict:
    import cv2
    import torch

    from mmwinwin.layers.winwin.windows import sample_windows

    img_dir = osp.join(data_root, 'images', 'training')
    ann_dir = osp.join(data_root, 'annotations', 'training')
    names = sorted(f[:-4] for f in os.listdir(img_dir))
    samples = []
    for n in names:
        img = cv2.imread(osp.join(img_dir, n + '.jpg'))[..., ::-1]
        lab = cv2.imread(osp.join(ann_dir, n + '.png'), cv2.IMREAD_UNCHANGED)
        samples.append((beacon_mask(img), lab >= 2))
    g = torch.Generator().manual_seed(seed)
    counts = defaultdict(float)
    for d in range(draws):
        beacon, objects = samples[d % len(samples)]
        grid = (beacon.shape[0] // PATCH, beacon.shape[1] // PATCH)
        wins = sample_windows(grid, 2, window, generator=g)
        inside = window_pixel_mask(beacon.shape, wins)
        has_beacon = beacon[inside].sum() >= 0.5 * beacon.sum()
        obj_px = objects[inside].sum()
        counts['beacon'] += has_beacon
        counts['object'] += obj_px > 0
        counts['both'] += has_beacon and obj_px > 0
        counts['obj_px'] += obj_px
        counts['obj_px_with_cue'] += obj_px if has_beacon else 0
    return dict(draws=draws, p_beacon=counts['beacon'] / draws,
                p_object=counts['object'] / draws, p_both=counts['both'] / draws,
                share_obj_px_with_cue=counts['obj_px_with_cue'] / max(1, counts['obj_px']))


def train(variant: str, data_root: str, work: str, args):
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    cfg = build_cfg(variant, data_root, osp.join(work, variant), tuple(args.img_size),
                    args.window, 144, args.iters, 4, 2e-3, args.seed, log_interval=args.iters,
                    num_scenes=2)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    runner.train()
    runner.model.eval()
    return runner


class AttentionEntropy:
    """Records the mean attention entropy of every fused-attention call (per layer order)."""

    def __init__(self):
        import torch.nn.functional as F
        self.F, self.orig, self.values = F, F.scaled_dot_product_attention, []

    def __enter__(self):
        import torch

        def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, **kw):
            logits = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            if attn_mask is not None:
                logits = logits.masked_fill(~attn_mask, float('-inf')) \
                    if attn_mask.dtype == torch.bool else logits + attn_mask
            p = logits.softmax(-1)
            ent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean().item()
            self.values.append((ent, k.shape[-2]))
            return self.orig(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, **kw)

        self.F.scaled_dot_product_attention = sdpa
        return self

    def __exit__(self, *exc):
        self.F.scaled_dot_product_attention = self.orig


def analyse(runner, data_root: str, args) -> dict:
    import torch
    import torch.nn.functional as F

    from mmwinwin.layers.winwin.windows import embed_windows, sample_windows, window_grids

    model = runner.model
    num_classes = model.decode_head.num_classes
    conf_whole = np.zeros((num_classes, num_classes), np.int64)
    split = {True: defaultdict(int), False: defaultdict(int)}  # beacon in windows -> counts
    ent_win, ent_whole = defaultdict(list), defaultdict(list)
    bn_layers = [(n, m) for n, m in model.decode_head.named_modules()
                 if isinstance(m, torch.nn.BatchNorm2d)]
    bn_inputs = defaultdict(list)
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=n: bn_inputs[name].append(
        inp[0].detach())) for n, m in bn_layers]
    g = torch.Generator().manual_seed(args.seed + 1000)
    with torch.no_grad():
        for data in runner.test_dataloader:
            batch = model.data_preprocessor(data, False)
            inputs, samples = batch['inputs'], batch['data_samples']
            with AttentionEntropy() as rec:
                pred = model.predict(inputs, samples)[0].pred_sem_seg.data[0].numpy()
            for i, (e, n) in enumerate(rec.values):
                ent_whole[i].append((e, n))
            gt = samples[0].gt_sem_seg.data[0].numpy()
            valid = gt != 255
            conf_whole += np.bincount(num_classes * gt[valid].astype(np.int64) + pred[valid],
                                      minlength=num_classes ** 2).reshape(num_classes,
                                                                          num_classes)
            # window-only: the model as trained (2 windows), against the same pixels whole
            grid = (inputs.shape[2] // PATCH, inputs.shape[3] // PATCH)
            wins = sample_windows(grid, 2, args.window, generator=g)
            bn_before = {k: len(v) for k, v in bn_inputs.items()}
            with AttentionEntropy() as rec:
                tok, pos = embed_windows(model.backbone.patch_embed, inputs, [wins], PATCH)
                levels = model.backbone.forward_tokens(
                    tok, pos, grid, window_shapes=[(h, w) for _, _, h, w in wins])
                feats = [[lv[0] for lv in per_win]
                         for per_win in zip(*[window_grids(lv, wins) for lv in levels])]
            for i, (e, n) in enumerate(rec.values):
                ent_win[i].append((e, n))
            img = data['inputs'][0].permute(1, 2, 0).numpy()[..., ::-1]  # BGR file -> RGB
            beacon = beacon_mask(img)
            inside = window_pixel_mask(gt.shape, wins)
            has_beacon = bool(beacon[inside].sum() >= 0.5 * max(1, beacon.sum()))
            for (t, l, h, w), f in zip(wins, feats):
                logits = model.decode_head.forward([x[None] for x in f])
                logits = F.interpolate(logits, size=(h * PATCH, w * PATCH), mode='bilinear',
                                       align_corners=False)
                wp = logits.argmax(1)[0].numpy()
                ys, xs = slice(t * PATCH, (t + h) * PATCH), slice(l * PATCH, (l + w) * PATCH)
                g_w, p_whole = gt[ys, xs], pred[ys, xs]
                obj = (g_w >= 1) & (g_w != 255)
                c = split[has_beacon]
                c['obj_px'] += int(obj.sum())
                c['obj_ok_window'] += int((wp[obj] == g_w[obj]).sum())
                c['obj_ok_whole'] += int((p_whole[obj] == g_w[obj]).sum())
            for k, n0 in bn_before.items():  # window-pass BN inputs are not test statistics
                del bn_inputs[k][n0:]
    for h in hooks:
        h.remove()

    iou = np.diag(conf_whole) / np.maximum(1, conf_whole.sum(0) + conf_whole.sum(1)
                                           - np.diag(conf_whole))
    classes = runner.test_dataloader.dataset.metainfo['classes']
    bn = {}
    for name, m in bn_layers:
        x = torch.cat([t.permute(1, 0, 2, 3).reshape(t.shape[1], -1) for t in bn_inputs[name]],
                      1)
        mu, var = x.mean(1), x.var(1)
        std_run = (m.running_var + m.eps).sqrt()
        bn[name] = dict(mean_shift=float(((mu - m.running_mean).abs() / std_run).mean()),
                        var_ratio=float((var / (m.running_var + m.eps)).mean()))

    def entropy_rows(store):
        return [dict(layer=i, tokens=v[0][1], entropy=float(np.mean([e for e, _ in v])),
                     normalised=float(np.mean([e / math.log(n) for e, n in v])))
                for i, v in sorted(store.items())]

    return dict(
        mIoU_whole=float(np.mean(iou) * 100),
        per_class_iou={c: float(v * 100) for c, v in zip(classes, iou)},
        window_vs_whole={('beacon in windows' if k else 'beacon outside'): dict(
            object_px=v['obj_px'],
            acc_window_only=100.0 * v['obj_ok_window'] / max(1, v['obj_px']),
            acc_whole_image=100.0 * v['obj_ok_whole'] / max(1, v['obj_px']))
            for k, v in split.items()},
        attention_entropy=dict(windows=entropy_rows(ent_win), whole=entropy_rows(ent_whole)),
        head_bn=bn)


def report(cov: dict, res: dict, args) -> str:
    L = [f'### Diagnosis (long-range task, {args.img_size[0]}x{args.img_size[1]}, 2 windows of '
         f'{args.window}x{args.window} tokens, {args.iters} iterations, seed {args.seed})', '',
         f'Cue coverage over {cov["draws"]} window draws on the training images: beacon inside '
         f'the windows {100 * cov["p_beacon"]:.1f} %, an object inside {100 * cov["p_object"]:.1f}'
         f' %, both {100 * cov["p_both"]:.1f} %; share of supervised object pixels that come '
         f'with the beacon visible: {100 * cov["share_obj_px_with_cue"]:.1f} % (full '
         'resolution: 100 %).', '',
         '| model | whole-image mIoU | ' + ' | '.join(f'IoU {c}' for c in
                                                     next(iter(res.values()))['per_class_iou'])
         + ' |', '|---|---:|' + '---:|' * len(next(iter(res.values()))['per_class_iou'])]
    for v, r in res.items():
        L.append(f'| {v} | {r["mIoU_whole"]:.1f} | ' + ' | '.join(
            f'{x:.1f}' for x in r['per_class_iou'].values()) + ' |')
    L += ['', 'Object-pixel accuracy on the pixels of 2 random windows per validation image, '
          'the model run on the windows only vs on the whole image:', '',
          '| model | windows | object px | window-only acc | whole-image acc |',
          '|---|---|---:|---:|---:|']
    for v, r in res.items():
        for k, w in r['window_vs_whole'].items():
            L.append(f'| {v} | {k} | {w["object_px"]} | {w["acc_window_only"]:.1f} | '
                     f'{w["acc_whole_image"]:.1f} |')
    L += ['', 'Attention entropy (nats; normalised = / log N), mean over heads, queries, images:',
          '', '| model | layer | windows: N, H, H/logN | whole: N, H, H/logN |',
          '|---|---:|---|---|']
    for v, r in res.items():
        for a, b in zip(r['attention_entropy']['windows'], r['attention_entropy']['whole']):
            L.append(f'| {v} | {a["layer"]} | {a["tokens"]}, {a["entropy"]:.2f}, '
                     f'{a["normalised"]:.2f} | {b["tokens"]}, {b["entropy"]:.2f}, '
                     f'{b["normalised"]:.2f} |')
    L += ['', 'Decode-head BatchNorm: running statistics vs whole-image validation batch '
          'statistics (mean shift in running-std units, variance ratio test / running):', '',
          '| model | layer | mean shift | var ratio |', '|---|---|---:|---:|']
    for v, r in res.items():
        for name, s in r['head_bn'].items():
            L.append(f'| {v} | {name} | {s["mean_shift"]:.2f} | {s["var_ratio"]:.2f} |')
    return '\n'.join(L)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=1200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384))
    parser.add_argument('--window', type=int, default=6)
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--draws', type=int, default=4000)
    parser.add_argument('--variants', nargs='+', default=['winwin', 'fullres'])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=None)
    parser.add_argument('--coverage-only', type=int, nargs='+', metavar='WINDOW', default=None,
                        help='only the cue coverage of 2 windows of each of these sides '
                             '(tokens) on the generated training images of --seed; no training')
    args = parser.parse_args(argv)

    import torch

    import mmwinwin  # noqa: F401
    from mmwinwin.datasets.synthetic import generate_ade20k

    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix='winwin_diagnose_')
    data = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                           num_val=args.num_val, img_size=tuple(args.img_size), num_scenes=2,
                           seed=args.seed)
    if args.coverage_only:
        print('| window | beacon in windows | object in windows | both | object px with the '
              'beacon visible |\n|---:|---:|---:|---:|---:|')
        for w in args.coverage_only:
            c = cue_coverage(data, w, args.draws, args.seed)
            print(f"| {w}x{w} | {100 * c['p_beacon']:.1f} % | {100 * c['p_object']:.1f} % | "
                  f"{100 * c['p_both']:.1f} % | {100 * c['share_obj_px_with_cue']:.1f} % |")
        return
    cov = cue_coverage(data, args.window, args.draws, args.seed)
    res = {v: analyse(train(v, data, work, args), data, args) for v in args.variants}
    text = report(cov, res, args)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'diagnosis.md'), 'w') as f:
            f.write(text + '\n')
        with open(osp.join(args.out, 'diagnosis.json'), 'w') as f:
            json.dump(dict(coverage=cov, models=res), f, indent=1)


if __name__ == '__main__':
    main()
