"""Draw Expedite's token clusters over an image (a superpixel-like map).

    # clusters of a model's layer-alpha tokens (expedited config, optional checkpoint)
    python tools/analysis_tools/visualize_clusters.py IMAGE --config CONFIG [--checkpoint CKPT] --out clusters.png
    # a plain config + its checkpoint, clustered after layer 3 into 11x11
    python tools/analysis_tools/visualize_clusters.py IMAGE --config PLAIN_CFG --checkpoint CKPT \
        --alpha 3 --grid 11 11
    # or clusters of the raw pixel patches (no model): shows the algorithm itself
    python tools/analysis_tools/visualize_clusters.py IMAGE --patch 16 --grid 20 20 --out clusters.png

Each token is coloured by the mean colour of its cluster (its nearest centre after the
clustering iterations), cluster borders are drawn in white, and the input is shown beside.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('image')
    p.add_argument('--out', default='clusters.png')
    p.add_argument('--config', help='an expedited config (ExpeditedMMSegViT / ExpeditedRoPEViT)')
    p.add_argument('--checkpoint', help='weights for the config (random init without)')
    p.add_argument('--alpha', type=int,
                   help='model mode: cluster after this layer (turns a plain ViT config into '
                        'its expedited twin; --grid, --iters, --window, --temperature apply)')
    p.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                   help='resize the image first (default: as is, padded to the patch size)')
    p.add_argument('--patch', type=int, default=16, help='pixel mode: patch size')
    p.add_argument('--grid', type=int, nargs=2, metavar=('h', 'w'),
                   help='pixel mode: cluster grid (default 0.7 of the token grid)')
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--window', type=int, default=5)
    p.add_argument('--temperature', type=float, default=0.02)
    return p.parse_args()


EXPEDITED = {'VisionTransformer': 'ExpeditedMMSegViT', 'RoPEViT': 'ExpeditedRoPEViT'}


def assignment_from_model(img_rgb: np.ndarray, config: str, checkpoint: str | None, args=None):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmwinwin  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import MODELS
    cfg.model.pretrained = None
    cfg.model.backbone.pop('init_cfg', None)
    if args is not None and args.alpha is not None:
        bb = cfg.model.backbone
        bb.type = EXPEDITED.get(bb.type, bb.type)
        bb.expedite = dict(alpha=args.alpha, iters=args.iters, window=args.window,
                           temperature=args.temperature, k=1)
        if args.grid:
            bb.expedite['cluster_grid'] = tuple(args.grid)
        else:
            bb.expedite['cluster_scale'] = 0.7
    model = MODELS.build(cfg.model).eval()
    if checkpoint:
        from mmwinwin.utils import load_checkpoint_strict
        load_checkpoint_strict(model, checkpoint)
    if getattr(model.backbone, 'expedite', None) is None:
        raise ValueError(f'{config} has no expedited backbone (backbone.expedite).')
    pre = model.data_preprocessor  # RGB in, normalised as the model was trained
    x = torch.from_numpy(img_rgb).permute(2, 0, 1).float()[None]
    if getattr(pre, '_enable_normalize', False):
        x = (x - pre.mean.view(1, -1, 1, 1)) / pre.std.view(1, -1, 1, 1)
    with torch.no_grad():
        _, weights = model.backbone.forward_expedited(x, reconstruct=False)
    if weights is None:
        raise ValueError('alpha is the last layer: nothing is clustered.')
    return weights.nearest()[0].reshape(weights.token_grid).numpy(), weights.cluster_grid


def assignment_from_pixels(img_rgb: np.ndarray, patch: int, grid, iters, window, t):
    from mmwinwin.layers import cluster_tokens, reconstruction_weights
    H, W = img_rgb.shape[0] // patch, img_rgb.shape[1] // patch
    x = torch.from_numpy(img_rgb[:H * patch, :W * patch]).float() / 255.0 * 16
    tokens = x.reshape(H, patch, W, patch, 3).permute(0, 2, 1, 3, 4).reshape(1, H * W, -1)
    grid = tuple(grid) if grid else (max(1, round(0.7 * H)), max(1, round(0.7 * W)))
    res = cluster_tokens(tokens, (H, W), grid, iters=iters, window=window, temperature=t)
    w = reconstruction_weights(tokens, res, k=1)
    return w.nearest()[0].reshape(H, W).numpy(), grid


def draw(img_rgb: np.ndarray, assign: np.ndarray) -> np.ndarray:
    h, w = img_rgb.shape[:2]
    full = cv2.resize(assign.astype(np.int32).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_NEAREST).astype(np.int64)
    n = int(full.max()) + 1
    counts = np.bincount(full.ravel(), minlength=n).clip(min=1)
    mean = np.stack([np.bincount(full.ravel(), img_rgb[..., c].ravel().astype(np.float64),
                                 minlength=n) / counts for c in range(3)], 1)
    painted = mean[full].astype(np.uint8)
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= full[:, 1:] != full[:, :-1]
    edge[1:, :] |= full[1:, :] != full[:-1, :]
    painted[edge] = 255
    gap = np.full((h, 8, 3), 255, np.uint8)
    return np.concatenate([img_rgb, gap, painted], axis=1)


def main():
    args = parse_args()
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'Cannot read image {args.image!r}.')
    if args.size:
        bgr = cv2.resize(bgr, (args.size[1], args.size[0]), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if args.config:
        assign, grid = assignment_from_model(rgb, args.config, args.checkpoint, args)
        p = rgb.shape[0] // assign.shape[0]
    else:
        assign, grid = assignment_from_pixels(rgb, args.patch, args.grid, args.iters,
                                              args.window, args.temperature)
        p = args.patch
    rgb = rgb[:assign.shape[0] * p, :assign.shape[1] * p]
    out = draw(rgb, assign)
    cv2.imwrite(args.out, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    used = len(np.unique(assign))
    print(f'{assign.shape[0]}x{assign.shape[1]} tokens -> {grid[0]}x{grid[1]} clusters '
          f'({used} used); wrote {args.out}')


if __name__ == '__main__':
    main()
