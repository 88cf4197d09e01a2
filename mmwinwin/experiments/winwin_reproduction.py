"""Does Win-Win work? A small reproduction of the paper's comparison, on CPU.

Generates a high-resolution ADE20K-layout dataset whose object classes depend on a
scene beacon placed anywhere in the image (so labels need context wider than one
window; ``mmwinwin.datasets.synthetic.generate_ade20k``), then trains the same tiny
ViT + FCN head for the same number of iterations as

  (a) Win-Win: 2 random windows per image, RoPE positions (``WinWinEncoderDecoder``),
  (b) full resolution: whole images,
  (c) low-resolution crops: one random crop with about the Win-Win token budget,
  (d) Win-Win with a learned absolute position embedding instead of RoPE,
  (e) Win-Win with pooled context tokens of the whole image beside the windows,
  (f) Win-Win, then whole images for the last 1/6 of the iterations,
  (g) (e), then whole images for the last 1/6,
  (p) (f) with the phase's own learning rate (the segmentation configs' recipe),

evaluates every model on the whole full-resolution validation images in one pass
(mmseg ``IoUMetric``) and prints a table (mIoU, aAcc, training time, tokens/image).
Everything runs through the real mmengine Runner, mmseg pipelines and models; every variant
is the config file of ``configs/winwin/experiments/`` with the variant's changes
(``mmwinwin.experiments.reproduction.build_cfg``).

    python -m mmwinwin.experiments.winwin_reproduction    # 8 variants, ~2 min each on 2 busy cores
    python -m mmwinwin.experiments.winwin_reproduction --iters 600 --variants winwin fullres
"""
from __future__ import annotations

import argparse
import os.path as osp
import tempfile

from .reproduction import RECIPE, VARIANTS, build_cfg, tokens_per_image, train_and_test

#: the comparison's variants, (a) to (g) and the recipe (``--variants`` takes every variant of
#: ``reproduction.VARIANTS``, the peers and design screens of ``winwin_curves`` included)
DEFAULT_VARIANTS = ('winwin', 'fullres', 'crop', 'winwin_abspos', 'winwin_ctx', 'winwin_ft',
                    'winwin_ctx_ft', RECIPE)


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--variants', nargs='+', default=list(DEFAULT_VARIANTS),
                        choices=list(VARIANTS))
    parser.add_argument('--img-size', type=int, nargs=2, default=(192, 384), metavar=('H', 'W'))
    parser.add_argument('--window', type=int, default=6, help='window side in tokens')
    parser.add_argument('--crop', type=int, default=144, help='low-res crop side in pixels')
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--bg-weight', type=float, default=0.25,
                        help='cross-entropy weight of the background class (objects are rare)')
    parser.add_argument('--num-scenes', type=int, default=2,
                        help='scenes of the generated data (object classes = 2 per scene)')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=12)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (1 is fastest on a shared, oversubscribed CPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    args = parser.parse_args(argv)

    import torch

    from mmwinwin.datasets.synthetic import generate_ade20k

    torch.set_num_threads(args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix='winwin_reproduction_')
    H, W = args.img_size
    data = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                           num_val=args.num_val, img_size=(H, W), num_scenes=args.num_scenes,
                           seed=args.seed)
    total = (H // 16) * (W // 16)
    tokens = {v: tokens_per_image(v, (H, W), args.window, args.crop) for v in args.variants}
    print(f'data: {args.num_train} train / {args.num_val} val images of {H}x{W} '
          f'({total} tokens) in {data}')
    rows = []
    for v in args.variants:
        print(f'\n=== {VARIANTS[v]}: training {args.iters} iterations, batch {args.batch_size}, '
              f'{tokens[v]} tokens/image ===', flush=True)
        cfg = build_cfg(v, data, osp.join(work, v), (H, W), args.window, args.crop, args.iters,
                        args.batch_size, args.lr, args.seed, log_interval=max(1, args.iters // 5),
                        bg_weight=args.bg_weight, num_scenes=args.num_scenes)
        res = train_and_test(cfg)
        rows.append((v, res))
    print(f'\nWin-Win reproduction: tiny RoPE ViT (64-d, 4 blocks) + FCN head, {args.iters} '
          f'iterations x batch {args.batch_size}, test on whole {H}x{W} images '
          f'({args.num_val} val images), threads {args.threads}')
    print('| variant | tokens / image | mIoU | aAcc | train time (s) |')
    print('|---|---:|---:|---:|---:|')
    full_t = next((r['train_s'] for v, r in rows if v == 'fullres'), None)
    for v, r in rows:
        ratio = f' ({full_t / r["train_s"]:.2f}x faster)' if full_t and v != 'fullres' else ''
        print(f'| {VARIANTS[v]} | {tokens[v]} | {r["mIoU"]:.2f} | {r["aAcc"]:.2f} | '
              f'{r["train_s"]:.1f}{ratio} |')
    return rows


if __name__ == '__main__':
    main()
