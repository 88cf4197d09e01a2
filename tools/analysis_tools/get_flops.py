"""FLOPs, MACs and parameters of a config's model, counted on its test-mode forward.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options KEY=VALUE ...]

Works for this project's configs and the hosts' (``mmseg::...``, ``mmdet::...``): segmentors
and depth estimators (``encode_decode``: backbone, neck, decode head, as at test time, the
expedited ones included), detectors (``_forward``: backbone, neck and heads on one image,
Mask R-CNN's RoI heads on the RPN's proposals, Mask2Former's pixel decoder and transformer
decoder) and the flow estimator (one image pair, ``mode='tensor'``). The model is built
with random weights on CPU from ``CONFIG`` and runs on one random ``3 x H x W`` input (a pair
for flow; default: the model's preprocessor size, the config's ``crop_size`` or the test
pipeline's ``Resize`` scale).

Counted with torch's ``FlopCounterMode`` as the Expedite benchmark counts
(``mmwinwin.utils.benchmark.count_macs``): matrix products, convolutions and attention (SDPA
at its math cost, whichever kernel ran); element-wise operations, softmax, norms, pooling and
resizes are not counted, as with fvcore and mmcv. Prints the input shape, GMACs, GFLOPs
(= 2 x MACs) and the parameters in millions.
"""
from __future__ import annotations

import argparse

import torch

from mmwinwin.utils.benchmark import count_macs


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                   help="input height and width (default: the model's preprocessor size, "
                        "the config's crop_size or the test pipeline's Resize scale)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.backbone.out_indices=[3]')
    return p.parse_args(argv)


def build_model(cfg) -> torch.nn.Module:
    """``MODELS.build(cfg.model)`` in the config's default scope, with its custom imports."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return MODELS.build(cfg.model).eval()


def default_shape(cfg) -> tuple[int, int]:
    """The input size a config implies: the preprocessor's ``size``, ``crop_size``, or the
    test pipeline's first ``Resize`` scale (given as ``(W, H)``)."""
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if size is None:
        size = cfg.get('crop_size')
    if size is None:
        loader = cfg.get('test_dataloader') or {}
        dataset = loader.get('dataset', {})
        while 'pipeline' not in dataset and 'dataset' in dataset:
            dataset = dataset['dataset']
        for t in dataset.get('pipeline', []):
            if str(t['type']).split('.')[-1] == 'Resize' and t.get('scale'):
                scale = t['scale']
                size = (scale, scale) if isinstance(scale, int) else (scale[1], scale[0])
                break
    if size is None:
        raise SystemExit('The config names no input size (preprocessor size, crop_size or a '
                         'test Resize scale): give one with --shape H W.')
    return int(size[0]), int(size[1])


def test_forward(model: torch.nn.Module, shape: tuple[int, int]):
    """The model's test-mode forward on one random input of ``shape``, as a callable."""
    H, W = shape
    meta = dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W),
                batch_input_shape=(H, W), scale_factor=(1.0, 1.0))
    name = type(model).__name__
    if hasattr(model, 'encode_decode'):  # mmseg segmentors and depth estimators
        img = torch.randn(1, 3, H, W)
        return lambda: model.encode_decode(img, [meta])
    try:
        from mmdet.models.detectors import BaseDetector
        from mmdet.structures import DetDataSample
    except ImportError:
        BaseDetector = None
    if BaseDetector is not None and isinstance(model, BaseDetector):
        img = torch.randn(1, 3, H, W)
        samples = [DetDataSample(metainfo=meta)]
        return lambda: model._forward(img, samples)
    if 'Flow' in name:  # WinWinFlowEstimator: (B, 2, 3, H, W) image pairs
        pair = torch.randn(1, 2, 3, H, W)
        return lambda: model(pair, mode='tensor')
    raise SystemExit(f'get_flops does not know how to run a {name} in test mode (segmentors, '
                     'depth estimators, mmdet detectors and the flow estimator are supported).')


def count(cfg, shape: tuple[int, int] | None = None) -> dict:
    """``dict(macs, flops, params, shape)`` of ``cfg``'s model (see the module doc)."""
    model = build_model(cfg)
    shape = tuple(shape) if shape else default_shape(cfg)
    fn = test_forward(model, shape)
    with torch.no_grad():
        macs, _ = count_macs(fn)
    params = sum(p.numel() for p in model.parameters())
    return dict(macs=macs, flops=2 * macs, params=params, shape=shape, model=type(model).__name__)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config
    if '::' in args.config:  # a host's config, e.g. mmseg::fcn/fcn_r18-d8_....py
        from mmengine.hub import get_config
        cfg = get_config(args.config)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    r = count(cfg, args.shape)
    H, W = r['shape']
    print(f'{"=" * 40}\nConfig: {args.config}\nModel: {r["model"]}\n'
          f'Input shape: (3, {H}, {W})' + (' x 2 (image pair)' if 'Flow' in r['model'] else '')
          + f'\nGMACs: {r["macs"] / 1e9:.4g}\nGFLOPs: {r["flops"] / 1e9:.4g}\n'
          f'Params: {r["params"] / 1e6:.4g} M\n{"=" * 40}\n'
          'MACs: matrix products, convolutions, attention (math cost); element-wise '
          'operations, norms, pooling and resizes not counted.')
    return r


if __name__ == '__main__':
    main()
