"""Does Win-Win work? A small reproduction of the paper's comparison, on CPU.

Generates a high-resolution ADE20K-layout dataset whose object classes depend on a
scene beacon placed anywhere in the image (so labels need context wider than one
window; ``mmwinwin.datasets.synthetic.generate_ade20k``), then trains the same tiny
ViT + FCN head for the same number of iterations as

  (a) Win-Win: 2 random windows per image, RoPE positions (``WinWinEncoderDecoder``),
  (b) full resolution: whole images,
  (c) low-resolution crops: one random crop with about the Win-Win token budget,
  (d) Win-Win with a learned absolute position embedding instead of RoPE,

evaluates every model on the whole full-resolution validation images in one pass
(mmseg ``IoUMetric``) and prints a table (mIoU, aAcc, training time, tokens/image).
Everything runs through the real mmengine Runner, mmseg pipelines and models.

    PYTHONPATH=$PWD python tools/winwin_experiment.py     # ~8 min on 2 busy shared cores
    PYTHONPATH=$PWD python tools/winwin_experiment.py --iters 600 --variants winwin fullres
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import tempfile
import time

VARIANTS = {
    'winwin': '(a) Win-Win, 2 windows, RoPE',
    'fullres': '(b) full resolution',
    'crop': '(c) low-res crop, same budget',
    'winwin_abspos': '(d) Win-Win, learned abs. pos. embed',
    'winwin_ctx': '(e) Win-Win + pooled context tokens',
    'winwin_ft': '(f) Win-Win, then whole images',
    'winwin_ctx_ft': '(g) Win-Win + context tokens, then whole images',
}
CONTEXT_POOL = 4  # tokens per side of a pooled context cell (variants winwin_ctx*)
FULL_PHASE_FRACTION = 5 / 6  # variants *_ft: whole images from 5/6 of the iterations on

_META = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
         'flip', 'flip_direction', 'reduce_zero_label', 'winwin_windows', 'winwin_token_index',
         'winwin_grid', 'winwin_patch_size')


def build_cfg(variant: str, data_root: str, work_dir: str, img_size: tuple[int, int],
              window: int, crop: int, iters: int, batch_size: int, lr: float = 2e-3,
              seed: int = 0, log_interval: int = 50,
              embed_dims: int = 64, num_layers: int = 4, bg_weight: float = 0.25,
              num_scenes: int = 3, context_pool: int = CONTEXT_POOL,
              full_phase_begin: int | None = None):
    """An mmengine config (dict) for one variant of the comparison.

    ``full_phase_begin``: first whole-image iteration of the ``*_ft`` variants (default
    ``round(FULL_PHASE_FRACTION * iters)``)."""
    if variant not in VARIANTS:
        raise KeyError(f'Unknown variant {variant!r}; choose from {sorted(VARIANTS)}.')
    model_options = {}
    if variant.startswith('winwin_ctx'):
        model_options['context_tokens'] = dict(pool=context_pool)
    if variant.endswith('_ft'):
        begin = round(FULL_PHASE_FRACTION * iters) if full_phase_begin is None \
            else full_phase_begin
        model_options['full_image_phase'] = dict(begin=begin)
    windows = variant.startswith('winwin')
    train_size = (crop, crop) if variant == 'crop' else tuple(img_size)
    train_pipeline = [dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', reduce_zero_label=True)]
    if variant == 'crop':
        train_pipeline.append(dict(type='RandomCrop', crop_size=(crop, crop)))
    train_pipeline.append(dict(type='RandomFlip', prob=0.5))
    if windows:
        train_pipeline.append(dict(type='WinWinWindows', num_windows=2, window_size=window))
    train_pipeline.append(dict(type='PackSegInputs', meta_keys=_META))
    test_pipeline = [dict(type='LoadImageFromFile'),
                     dict(type='LoadAnnotations', reduce_zero_label=True),
                     dict(type='PackSegInputs')]
    abspos = variant == 'winwin_abspos'
    from mmwinwin.datasets.synthetic import synthetic_ade20k_classes
    classes = synthetic_ade20k_classes(num_scenes)
    num_classes = len(classes)
    dataset = dict(type='SyntheticADE20KDataset', data_root=data_root,
                   metainfo=dict(classes=tuple(classes)))
    return dict(
        default_scope='mmseg',
        work_dir=work_dir,
        model=dict(
            type='WinWinEncoderDecoder' if windows else 'EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                                   seg_pad_val=255, size=train_size),
            backbone=dict(type='RoPEViT', arch=dict(embed_dims=embed_dims,
                                                    num_layers=num_layers, num_heads=2,
                                                    mlp_ratio=2.0),
                          img_size=tuple(img_size), patch_size=16, out_indices=(num_layers - 1,),
                          use_rope=not abspos, use_abs_pos_embed=abspos),
            decode_head=dict(type='FCNHead', in_channels=embed_dims, in_index=0,
                             channels=embed_dims, num_convs=2, concat_input=False,
                             dropout_ratio=0.0, num_classes=num_classes,
                             norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0,
                                              class_weight=[bg_weight] + [1.0] * (num_classes - 1),
                                              avg_non_ignore=True)),
            train_cfg=dict(), test_cfg=dict(mode='whole'), **model_options),
        train_dataloader=dict(
            batch_size=batch_size, num_workers=0, persistent_workers=False,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(dataset, data_prefix=dict(img_path='images/training',
                                                   seg_map_path='annotations/training'),
                         pipeline=train_pipeline)),
        test_dataloader=dict(
            batch_size=1, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(dataset, data_prefix=dict(img_path='images/validation',
                                                   seg_map_path='annotations/validation'),
                         pipeline=test_pipeline)),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(
            type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=max(1, iters // 10)),
                         dict(type='PolyLR', power=1.0, begin=max(1, iters // 10), end=iters,
                              eta_min=0.0, by_epoch=False)],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1),
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=log_interval, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters,
                            max_keep_ckpts=1),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='SegVisualizationHook', draw=False)),
        log_processor=dict(by_epoch=False),
        log_level='INFO',
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
                     dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=seed),
        custom_hooks=[dict(type='FullImagePhaseHook')],
        custom_imports=dict(imports=['mmwinwin'], allow_failed_imports=False),
    )


def train_and_test(cfg: dict, quiet: bool = False) -> dict:
    """Train with the mmengine Runner, then test on whole images; returns metrics and the
    training wall time in seconds (data loading included, evaluation excluded)."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmwinwin.utils import build_runner

    import mmwinwin  # noqa: F401

    runner = build_runner(Config(cfg))
    if quiet:
        MMLogger.get_current_instance().setLevel(logging.WARNING)
    t0 = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - t0
    metrics = runner.test()
    return dict(metrics, train_s=train_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
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
    args = parser.parse_args()

    import torch

    from mmwinwin.datasets.synthetic import generate_ade20k

    torch.set_num_threads(args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix='winwin_experiment_')
    H, W = args.img_size
    data = generate_ade20k(osp.join(work, 'data'), num_train=args.num_train,
                           num_val=args.num_val, img_size=(H, W), num_scenes=args.num_scenes,
                           seed=args.seed)
    total = (H // 16) * (W // 16)
    ctx = -(-(H // 16) // CONTEXT_POOL) * -(-(W // 16) // CONTEXT_POOL)
    tokens = dict(winwin=2 * args.window ** 2, winwin_abspos=2 * args.window ** 2,
                  winwin_ctx=2 * args.window ** 2 + ctx, fullres=total, crop=(args.crop // 16) ** 2)
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


if __name__ == '__main__':
    main()
