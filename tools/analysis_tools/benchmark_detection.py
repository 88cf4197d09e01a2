"""GFLOPs and images/s of detection backbones and whole detectors, baseline vs Expedite,
measured side by side in one run (same weights, same inputs, same threads).

    python tools/analysis_tools/benchmark_detection.py --size 512 --reps 3 --threads 2
    python tools/analysis_tools/benchmark_detection.py --pairs vitdet-m2f-panoptic --size 1024

GFLOPs are multiply-accumulates (as the Expedite paper reports), counted by
``mmwinwin.utils.benchmark.count_macs`` (``torch.utils.flop_counter`` plus every fused
SDPA kernel, CPU's included) over matmuls / convolutions / attention; ops without a
counter (e.g. ``grid_sample`` in the deformable-attention pixel decoder on CPU) are not
included, identically for both sides. images/s is the median over ``--reps`` timed
forwards after one warm-up, batch 1, ``torch.no_grad``; ``--timer cpu`` uses process CPU
time (images per CPU-second), steadier than wall clock on a shared machine. The expedited model gets the
baseline's weights (checkpoints load unchanged), here random: speed does not depend on
the values.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository
from mmwinwin.utils.benchmark import count_macs, time_fn
PAIRS = {
    'vitdet-m2f-panoptic': (
        'configs/vitdet/mask2former_rope-vit-b-win14_lsj-50e_coco-panoptic.py',
        'configs/expedite_det/mask2former_rope-vit-b-win14-expedite-a6-c64_lsj-50e_coco-panoptic.py'),
    'vitdet-mask-rcnn': (
        'configs/vitdet/mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py',
        'configs/expedite_det/mask-rcnn_rope-vit-b-win14-expedite-a6-c64_lsj-100e_coco.py'),
    'swin-l-m2f-panoptic': (
        'mmdet::mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py',
        'configs/expedite_det/'
        'mask2former_swin-l-p4-w12-384-in21k-expedite-a10-c64_16xb1-lsj-100e_coco-panoptic.py'),
}


def build(path: str):
    import mmwinwin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    if path.startswith('mmdet::'):  # a config shipped inside the mmdet package
        import mmdet
        path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path[len('mmdet::'):])
    else:
        path = osp.join(ROOT, path)
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    cfg.model.backbone.pop('init_cfg', None)
    cfg.model.backbone['init_cfg'] = None
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def inputs(size: int):
    from mmdet.structures import DetDataSample
    hw = (size, size)
    meta = dict(img_shape=hw, ori_shape=hw, pad_shape=hw, batch_input_shape=hw,
                scale_factor=(1.0, 1.0))
    torch.manual_seed(0)
    return torch.randn(1, 3, *hw), [DetDataSample(metainfo=meta)]


def gmacs(fn) -> float:
    return count_macs(fn)[0] / 1e9


def images_per_s(fn, reps: int, timer=time.perf_counter) -> float:
    t = time_fn(fn, warmup=1, repeats=reps)
    return 1.0 / (t.cpu_median if timer is time.process_time else t.median)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    p.add_argument('--size', type=int, default=512, help='square input side (pixels)')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--timer', choices=['wall', 'cpu'], default='wall',
                   help='wall clock, or process CPU time (all threads; robust on a shared '
                        'machine: "images/s" then means images per CPU-second)')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f'# torch {torch.__version__}, {a.threads} threads, input {a.size}x{a.size}, '
          f'batch 1, median of {a.reps}, {a.timer} time')
    timer = time.process_time if a.timer == 'cpu' else time.perf_counter
    header = (f'| model | part | GMACs base | GMACs exp | ratio | img/s base | img/s exp | '
              f'speed-up |')
    print(header)
    print('|' + '---|' * 8)
    for name in a.pairs:
        base_cfg, exp_cfg = PAIRS[name]
        base, exp = build(base_cfg), build(exp_cfg)
        res = exp.load_state_dict(base.state_dict())
        if res.missing_keys or res.unexpected_keys:
            raise RuntimeError(f'{name}: checkpoint keys differ: {res}')
        img, samples = inputs(a.size)
        rows = []
        with torch.no_grad():
            for part in ('backbone', 'detector'):
                fns = []
                for m in (base, exp):
                    if part == 'backbone':
                        fns.append(lambda m=m: m.backbone(img))
                    else:
                        fns.append(lambda m=m: m.predict(img, [s.clone() for s in samples]))
                g = [gmacs(f) for f in fns]
                s = [images_per_s(f, a.reps, timer) for f in fns]
                rows.append(f'| {name} | {part} | {g[0]:.1f} | {g[1]:.1f} | {g[1] / g[0]:.2f} | '
                            f'{s[0]:.3f} | {s[1]:.3f} | {s[1] / s[0]:.2f}x |')
                print(rows[-1])
                sys.stdout.flush()
        del base, exp


if __name__ == '__main__':
    main()
