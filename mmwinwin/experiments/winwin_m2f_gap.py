"""Where Win-Win Mask2Former loses its PQ things on the ``local`` cue task (issue 23, item 4).

Trains the tiny panoptic Mask2Former of ``winwin_det_curves --model mask2former-panoptic``
(same configs, data, heads and schedule) once at full resolution and once with Win-Win
(2 windows of ``--window`` x ``--window`` tokens), then scores **each set of weights in
every setting** on the same validation images, with the same windows:

* ``whole``: the whole image (the test setting; Win-Win's PQ is measured here);
* ``window``: Win-Win's training setting: the backbone sees only the windows' tokens
  (full-image RoPE positions), the heads see each window as an image of its own, its
  targets cropped to it (``crop_sample_to_window`` with the model's border rule);
* ``tile``: the same windows and cropped targets, but the backbone ran on the whole image
  (its features cropped to the window before the neck): the heads' input is a window, the
  backbone's view the test's;
* ``tile<K>`` (``--tile-sizes``): as ``tile`` with K x K-token tiles at random places.

For every image / window: the heads' loss terms (last decoder layer: ``loss_cls``,
``loss_mask``, ``loss_dice``, each item scored alone) and the Hungarian matching of its
targets (mmdet's own ``_get_targets_single``, ``--match-points`` points): targets per item
(things, stuff), thing targets cut by the window (``partial``: fewer pixels than in the
whole image), queries left unmatched, and per thing target the matched query's probability
of the right class and its mask IoU (prediction upsampled, sigmoid > 0.5); ``found`` =
probability > 0.8 (Mask2Former's ``object_mask_thr``) and IoU > 0.5 (a PQ true positive,
ignoring the fusion's overlaps); ``false things`` = unmatched queries whose best thing-class
probability exceeds 0.8 (each would become a false-positive segment).

``--pos-normalize 0`` trains and scores both models with the heads' sine positional
encodings (pixel decoder and transformer decoder) *not* normalised to the feature map
(mmdet ``SinePositionalEncoding(normalize=False)``: a cell's position is its index, the
same in a window and in the whole image), a check of one candidate cause.
``--finetune-head ITERS`` then trains the neck and heads of each model ITERS more
iterations on whole images with the backbone frozen, and scores that: whether the
backbone's features carry what the whole-image heads need.
``--head-mosaic R C``: the Win-Win heads train on R x C mosaics of the batch's windows
(``WinWinMask2Former(head_mosaic=...)``). ``--head-positions image`` trains the Win-Win model with
``WinWinMask2Former(head_positions='image')`` (each window's cells encoded at their place in
the whole image, as at test time) and scores its ``window`` / ``tile`` settings so too.

    python -m mmwinwin.experiments.winwin_m2f_gap --seeds 0 --iters 600 \\
        --out work_dirs/m2f_gap
Writes ``OUT/winwin_m2f_gap.json`` (every figure, the command) and prints a table; trained
weights are kept under ``OUT/`` (a rerun scores them again without training).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import os.path as osp
import sys
from collections import defaultdict

import numpy as np

SETTINGS = ('whole', 'window', 'tile')
KEY_DEFAULTS = dict(head_positions='window', train_windows=None, head_mosaic=None)


def run_args(args) -> argparse.Namespace:
    """The ``winwin_det_curves`` arguments of its panoptic ``local`` runs (its defaults)."""
    return argparse.Namespace(
        model='mask2former-panoptic', iters=args.iters, long_factor=1.0,
        img_size=tuple(args.img_size), crop=96, window=args.window, val_every=args.iters,
        lr=1e-3, light_heads=1, object_mask_thr=None, batch_size=4, num_train=args.num_train,
        num_val=args.num_val, cue_gap=args.cue_gap)


def set_pos_normalize(cfg, normalize: bool) -> None:
    head = cfg.model.panoptic_head
    head.positional_encoding.normalize = normalize
    head.pixel_decoder.positional_encoding.normalize = normalize


def train(variant: str, data: str, seed: int, args, out: str) -> tuple[str, dict]:
    """Train one model (or reuse its stored weights); its whole-image PQ at the end."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from .curves import CurveRecorder
    from .winwin_det_curves import build_cfg, metrics_of

    tag = f'{variant}_seed{seed}_pos{args.pos_normalize}_it{args.iters}_w{args.window}'
    if variant.startswith('winwin') and args.head_positions != 'window':
        tag += f'_head{args.head_positions}'
    if variant.startswith('winwin') and args.head_mosaic:
        tag += '_mosaic{}x{}'.format(*args.head_mosaic)
    if variant.startswith('winwin') and args.train_windows:
        tag += '_train{}x{}x{}'.format(*args.train_windows)
    path = osp.join(out, f'weights_{tag}.pth')
    meta = osp.join(out, f'weights_{tag}.json')
    if osp.exists(path) and osp.exists(meta):
        return path, json.load(open(meta))
    ra = run_args(args)
    cfg = build_cfg(variant, 'local', data, osp.join(out, 'work', tag), ra, seed)
    set_pos_normalize(cfg, bool(args.pos_normalize))
    if variant.startswith('winwin'):
        cfg.model.head_positions = args.head_positions
        if args.head_mosaic:
            cfg.model.head_mosaic = tuple(args.head_mosaic)
        n, h, w = args.train_windows or (2, args.window, args.window)
        for t in cfg.train_dataloader.dataset.pipeline:
            if t['type'] == 'WinWinWindows':
                t.update(num_windows=n, window_size=[h, w])
    runner = Runner.from_cfg(cfg)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder(metrics_of(ra.model))
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    torch.save(runner.model.state_dict(), path)
    point = rec.points[-1]
    json.dump(point, open(meta, 'w'))
    return path, point


def finetune_head(variant: str, weights: str, data: str, seed: int, args,
                  out: str) -> tuple[str, dict]:
    """``weights`` (a model trained as ``variant``) with its backbone frozen and its neck and
    heads trained ``--finetune-head`` more iterations on whole images (the full-resolution
    config and schedule); its whole-image PQ at the end."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from .curves import CurveRecorder
    from .winwin_det_curves import build_cfg, metrics_of

    tag = osp.basename(weights)[len('weights_'):-len('.pth')] + f'_headft{args.finetune_head}'
    path, meta = osp.join(out, f'weights_{tag}.pth'), osp.join(out, f'weights_{tag}.json')
    if osp.exists(path) and osp.exists(meta):
        return path, json.load(open(meta))
    ra = run_args(args)
    ra.iters = ra.val_every = args.finetune_head
    cfg = build_cfg('fullres', 'local', data, osp.join(out, 'work', tag), ra, seed)
    set_pos_normalize(cfg, bool(args.pos_normalize))
    cfg.load_from = weights
    runner = Runner.from_cfg(cfg)
    runner.model.backbone.requires_grad_(False)  # AdamW skips parameters without gradients
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    rec = CurveRecorder(metrics_of(ra.model))
    runner.register_hook(rec.as_hook(), priority='LOWEST')
    runner.train()
    torch.save(runner.model.state_dict(), path)
    json.dump(rec.points[-1], open(meta, 'w'))
    return path, rec.points[-1]


def measure_model(args, data: str, seed: int):
    """The Win-Win model (its ``window_batches`` and border rule) and the scoring samples:
    the validation images, whole, with 2 windows each (the seeded Win-Win transform)."""
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import mmwinwin  # noqa: F401  (registers the project's modules)
    from .winwin_det_curves import WINWIN_PANOPTIC_CONFIG, _panoptic_heads, panoptic_metainfo

    init_default_scope('mmdet')
    ra = run_args(args)
    cfg = Config.fromfile(WINWIN_PANOPTIC_CONFIG)
    _panoptic_heads(cfg, 'local', 'winwin', ra)
    set_pos_normalize(cfg, bool(args.pos_normalize))
    cfg.model.data_preprocessor.batch_augments = None
    from mmdet.registry import DATASETS, MODELS
    model = MODELS.build(cfg.model)
    pipe = [dict(type='CheckedLoadImageFromFile', to_float32=True),
            dict(type='mmwinwin.LoadPanopticAnnotations', with_bbox=True, with_mask=True,
                 with_seg=True),
            dict(type='WinWinWindows', num_windows=2, window_size=args.window, patch_size=16,
                 seed=seed),
            dict(type='WinWinPackDetInputs')]
    ds = DATASETS.build(dict(
        type='CocoPanopticDataset', data_root=data, metainfo=panoptic_metainfo('local'),
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        test_mode=False, filter_cfg=dict(filter_empty_gt=True), pipeline=pipe))
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(len(ds))]), True)
    for s in batch['data_samples']:  # each thing's whole-image area, carried through crops
        s.gt_instances.full_area = torch.as_tensor(
            np.asarray(s.gt_instances.masks.areas, dtype=np.float32))
    return model, batch


def tile_windows(grid: tuple[int, int], size: int, n: int, rng) -> list:
    h, w = grid
    return [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)), size, size)
            for _ in range(n)]


def items(model, batch, setting: str, windows: dict):
    """``[(x, sample)]`` per image or window: neck features of batch size 1 and the
    (cropped) sample."""
    import torch

    from mmwinwin.models.winwin.detectors import WindowFeatures
    from mmwinwin.models.winwin.window_targets import crop_sample_to_window

    inputs, samples = batch['inputs'], batch['data_samples']
    out = []
    if setting == 'whole':
        for i, s in enumerate(samples):
            out.append((model.extract_feat(inputs[i:i + 1]), s))
        return out
    wins = windows[setting]
    if setting == 'window':
        metas = [s.metainfo for s in samples]
        grids = [tuple(m['winwin_grid']) for m in metas]
        for i, s in enumerate(samples):
            buckets = model.window_batches(inputs[i:i + 1], [s], [wins[i]], None, [grids[i]])
            for feats, crops in buckets.values():
                for f, c in zip(feats, crops):
                    x = model.extract_feat(WindowFeatures(lv[None] for lv in f))
                    out.append((x, c))
        return out
    for i, s in enumerate(samples):  # tiles: the whole image's backbone features, cropped
        full = model.backbone(inputs[i:i + 1])
        for win in wins[i]:
            t, left, h, w = win
            f = WindowFeatures(lv[..., t:t + h, left:left + w] for lv in full)
            out.append((model.extract_feat(f), crop_sample_to_window(s, win, 16,
                                                                       model.border_rule)))
    return out


def score(model, x, sample, match_points: int, seed: int, head_positions: str) -> dict:
    """Loss terms and matching statistics of one item (see the module docstring);
    ``head_positions='image'``: a window's heads get its whole-image positions."""
    import contextlib

    from mmwinwin.models.winwin.detectors import image_frame_positions, window_frames

    head = model.panoptic_head
    ctx = contextlib.nullcontext()
    if head_positions == 'image' and 'winwin_crop' in sample.metainfo:
        ctx = image_frame_positions(head, window_frames([sample], 16),
                                    tuple(sample.metainfo['img_shape'][:2]))
    with ctx:
        return _score(head, x, sample, match_points, seed)


def _score(head, x, sample, match_points: int, seed: int) -> dict:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    losses = head.loss(x, [sample])
    cls_all, mask_all = head(x, [sample])
    cls, masks = cls_all[-1][0], mask_all[-1][0]
    gt = head.preprocess_gt([sample.gt_instances],
                            [sample.gt_sem_seg if 'gt_sem_seg' in sample else None])[0]
    nt = head.num_things_classes
    n_th = int((gt.labels < nt).sum())
    keep_points = head.num_points
    head.num_points = match_points
    torch.manual_seed(seed)
    *_, sr = head._get_targets_single(cls, masks, gt, sample.metainfo)
    head.num_points = keep_points
    prob = cls.softmax(-1)
    pos, gidx = sr.pos_inds, sr.pos_assigned_gt_inds
    full_area = sample.gt_instances.full_area
    things = []
    if len(pos):
        up = F.interpolate(masks[pos][None], size=gt.masks.shape[-2:], mode='bilinear',
                           align_corners=False)[0].sigmoid() > 0.5
        is_thing = gt.labels < nt
        for q, g, m in zip(pos.tolist(), gidx.tolist(), up):
            lab = int(gt.labels[g])
            if lab >= nt:
                continue
            tgt = gt.masks[g].bool()
            inter, union = (m & tgt).sum().item(), (m | tgt).sum().item()
            iou = inter / union if union else 0.0
            p = float(prob[q, lab])
            other = is_thing & (torch.arange(len(gt.labels)) != g)
            others = gt.masks[other].bool().any(0) if other.any() else torch.zeros_like(tgt)
            same = other & (gt.labels == lab)
            twin = bool(same.any())  # another thing of the same class in the item
            same = gt.masks[same].bool().any(0) if same.any() else torch.zeros_like(tgt)
            things.append(dict(prob=p, iou=iou, found=p > 0.8 and iou > 0.5,
                               partial=bool(tgt.sum().item() < full_area[g].item() - 0.5),
                               n_things=n_th, twin=twin,
                               on_others=(m & others).sum().item() / max(1, m.sum().item()),
                               on_same=(m & same).sum().item() / max(1, m.sum().item())))
    unmatched = torch.ones(len(cls), dtype=torch.bool)
    unmatched[pos] = False
    false_things = int((prob[unmatched, :nt].max(-1).values > 0.8).sum()) if nt else 0
    return dict(loss_cls=float(losses['loss_cls']), loss_mask=float(losses['loss_mask']),
                loss_dice=float(losses['loss_dice']), n_things=n_th,
                n_stuff=len(gt.labels) - n_th, unmatched=int(unmatched.sum()),
                false_things=false_things, things=things)


def summarise(rows: list[dict]) -> dict:
    things = [t for r in rows for t in r['things']]
    whole = [t for t in things if not t['partial']]
    part = [t for t in things if t['partial']]

    def mean(v):
        return round(float(np.mean(v)), 4) if len(v) else None

    def group(ts):
        return dict(n=len(ts), prob=mean([t['prob'] for t in ts]),
                    iou=mean([t['iou'] for t in ts]), found=mean([t['found'] for t in ts]))

    by_count = {f'things_in_item_{k}': group([t for t in things if min(t['n_things'], 3) == k])
                for k in (1, 2, 3)}
    by_count['things_alone_in_their_class'] = group([t for t in things if not t['twin']])
    by_count['things_with_a_same_class_thing'] = group([t for t in things if t['twin']])
    same = [sum(1 for t in r['things'] if t['twin']) >= 2 for r in rows]
    return dict(
        items_with_two_things_of_a_class=mean(same), items=len(rows),
        mask_on_other_things=mean([t['on_others'] for t in things]),
        mask_on_same_class_things=mean([t['on_same'] for t in things]),
        items_by_things={str(k): mean([min(r['n_things'], 3) == k for r in rows])
                         for k in range(4)},
        **by_count, **{k: mean([r[k] for r in rows]) for k in (
            'loss_cls', 'loss_mask', 'loss_dice', 'n_things', 'n_stuff', 'unmatched',
            'false_things')},
        items_without_things=mean([r['n_things'] == 0 for r in rows]),
        partial_fraction=mean([t['partial'] for t in things]),
        things=group(things), whole_things=group(whole), partial_things=group(part))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--window', type=int, default=4)
    parser.add_argument('--tile-sizes', type=int, nargs='*', default=[8],
                        help='more tile sides in tokens (whole-image backbone, cropped)')
    parser.add_argument('--img-size', type=int, nargs=2, default=(128, 256))
    parser.add_argument('--cue-gap', type=int, default=64)
    parser.add_argument('--num-train', type=int, default=96)
    parser.add_argument('--num-val', type=int, default=24)
    parser.add_argument('--match-points', type=int, default=1024)
    parser.add_argument('--pos-normalize', type=int, default=1, choices=(0, 1))
    parser.add_argument('--head-positions', default='window', choices=('window', 'image'),
                        help="the Win-Win model's head_positions (WinWinMask2Former)")
    parser.add_argument('--finetune-head', type=int, default=0, metavar='ITERS',
                        help='score each variant after ITERS more iterations of its neck and '
                             'heads on whole images, its backbone frozen (are the '
                             "backbone's features enough, is it the heads?)")
    parser.add_argument('--head-mosaic', type=int, nargs=2, default=None,
                        metavar=('ROWS', 'COLS'),
                        help="the Win-Win model's head_mosaic: its heads train on mosaics "
                             'of ROWS x COLS windows of the batch')
    parser.add_argument('--train-windows', type=int, nargs=3, default=None,
                        metavar=('N', 'H', 'W'),
                        help='Win-Win training windows: N windows of H x W tokens (default: '
                             '2 of --window x --window); the scoring windows stay 2 x --window')
    parser.add_argument('--variants', nargs='+', default=['fullres', 'winwin'],
                        help="fullres, winwin; init: the untrained model (with "
                             '--finetune-head: a control)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    from mmwinwin.datasets.synthetic import generate_coco

    store = osp.join(args.out, 'winwin_m2f_gap.json')
    result = json.load(open(store)) if osp.exists(store) else dict(runs=[])
    result['command'] = 'python -m mmwinwin.experiments.winwin_m2f_gap ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    for seed in args.seeds:
        data = osp.join(args.out, f'data_local_seed{seed}_gap{args.cue_gap}')
        if not osp.isdir(data):
            generate_coco(data, num_train=args.num_train, num_val=args.num_val,
                          img_size=tuple(args.img_size), seed=seed, task='local',
                          cue_gap=args.cue_gap)
        model, batch = measure_model(args, data, seed)
        grid = tuple(batch['data_samples'][0].metainfo['winwin_grid'])
        rng = np.random.default_rng(seed)
        windows = {'window': [s.metainfo['winwin_windows'] for s in batch['data_samples']]}
        windows['tile'] = windows['window']
        settings = list(SETTINGS)
        for k in args.tile_sizes:
            windows[f'tile{k}'] = [tile_windows(grid, k, 2, rng) for _ in batch['data_samples']]
            settings.append(f'tile{k}')
        for variant in args.variants:
            if variant == 'init':  # untrained weights (control of --finetune-head)
                path, point = osp.join(args.out, f'weights_init_seed{seed}.pth'), {
                    'PQ things': float('nan'), 'PQ': float('nan')}
                if not osp.exists(path):
                    torch.manual_seed(seed)
                    fresh, _ = measure_model(args, data, seed)
                    torch.save(fresh.state_dict(), path)
            else:
                path, point = train(variant, data, seed, args, args.out)
            if args.finetune_head:
                path, point = finetune_head(variant, path, data, seed, args, args.out)
            model.load_state_dict(torch.load(path))
            model.eval()
            hp = args.head_positions if variant.startswith('winwin') else 'window'
            tw = args.train_windows if variant.startswith('winwin') else None
            name = variant + (f' + heads {args.finetune_head} it whole images, backbone frozen'
                              if args.finetune_head else '')
            run = dict(seed=seed, weights=name, iters=args.iters, window=args.window,
                       train_windows=tw,
                       head_mosaic=args.head_mosaic if variant.startswith('winwin') else None,
                       pos_normalize=args.pos_normalize, head_positions=hp,
                       pq_things_whole=round(point['PQ things'], 2),
                       pq_whole=round(point['PQ'], 2), settings={})
            with torch.no_grad():
                for setting in settings:
                    rows = [score(model, x, s, args.match_points, seed * 1000 + j, hp)
                            for j, (x, s) in enumerate(items(model, batch, setting, windows))]
                    run['settings'][setting] = summarise(rows)
            result['runs'] = [r for r in result['runs'] if any(
                r.get(k, KEY_DEFAULTS.get(k)) != run[k] for k in (
                    'seed', 'weights', 'iters', 'window', 'pos_normalize', 'head_positions',
                    'train_windows', 'head_mosaic'))]
            result['runs'].append(run)
            with open(store, 'w') as f:
                json.dump(result, f, indent=1)
            print(table([run]), flush=True)
    print(table(result['runs']))


def table(runs: list[dict]) -> str:
    lines = ['| weights (seed, pos-norm, head positions) | PQth whole | setting | things/item '
             '| partial | unmatched q | cls | mask | dice | prob | IoU | found (whole / partial) '
             '| false things/item | found, 1 / 2 / 3+ things in item | found, alone in class / '
             'with a same-class thing | mask on same-class things |', '|' + '---|' * 16]
    for r in runs:
        for name, s in r['settings'].items():
            t, w, p = s['things'], s['whole_things'], s['partial_things']
            f = lambda v: '-' if v is None else f'{v:.2f}'  # noqa: E731
            tw = r.get('train_windows')
            name_r = (f"{r['weights']} ({r['seed']}, {r['pos_normalize']}, "
                      f"{r.get('head_positions', 'window')}"
                      + (', train {}x{}x{}'.format(*tw) if tw else '')
                      + (', mosaic {}x{}'.format(*r['head_mosaic']) if r.get('head_mosaic')
                         else '') + ')')
            lines.append(
                f"| {name_r} | {r['pq_things_whole']} "
                f"| {name} | {f(s['n_things'])} | {f(s['partial_fraction'])} "
                f"| {f(s['unmatched'])} | {f(s['loss_cls'])} | {f(s['loss_mask'])} "
                f"| {f(s['loss_dice'])} | {f(t['prob'])} | {f(t['iou'])} | {f(t['found'])} "
                f"({f(w['found'])} / {f(p['found'])}) | {f(s['false_things'])} | "
                + ' / '.join(f(s.get(f'things_in_item_{k}', {}).get('found')) for k in (1, 2, 3))
                + ' | ' + ' / '.join(f(s.get(k, {}).get('found')) for k in (
                    'things_alone_in_their_class', 'things_with_a_same_class_thing'))
                + f" | {f(s.get('mask_on_same_class_things'))} |")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
