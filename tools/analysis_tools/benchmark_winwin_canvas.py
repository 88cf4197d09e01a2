"""What packing only the windows' pixels saves: whole image vs canvas, data side only.

``WinWinPackSegInputs(pixels='windows')`` / ``WinWinPackDetInputs(pixels='windows')`` pack a
canvas of the Win-Win windows' pixels instead of the whole image. The model embeds the same
pixels either way (the losses are equal: tests/test_winwin_canvas.py), so what changes is
the data side, measured here with the configs' own packers and data preprocessors:

* ``seg``: ``configs/winwin/winwin-2x22_upernet_rope-vit-b16_8xb2-80k_bdd100k-720x1280.py``
  (1280x720 images, 2 windows of 22x22 tokens); whole: its ``CheckedSegDataPreProcessor``
  (``size=(720, 1280)``); canvas: the same with ``size=None, size_divisor=16``.
* ``det``: ``configs/vitdet/winwin-2x28_mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py``
  (1024x1024 LSJ images, 2 windows of 28x28 tokens, ``--instances`` instance masks per image);
  whole: its ``CheckedDetDataPreprocessor`` (``pad_mask=True``, ``BatchFixedSizePad`` to
  1024x1024); canvas: the same with ``pad_mask=False, batch_augments=None``.

Per batch of ``--batch`` images (random pixels, windows from the real ``WinWinWindows``):
packer milliseconds (all images), data-preprocessor milliseconds (median of ``--repeats``
calls on fresh copies of the packed batch; it normalises, pads and, on a GPU, moves the
batch), the packed input bytes (uint8: what a dataloader worker hands over and what moves
to the device) and the preprocessed input bytes (float32: what the model reads). A third
run, ``image_same_preprocessor``, packs whole images through the canvas run's preprocessor
settings, to separate the canvas's saving from that of dropping ``pad_mask``.

    python tools/analysis_tools/benchmark_winwin_canvas.py            # CPU, 1 thread
    python tools/analysis_tools/benchmark_winwin_canvas.py --device cuda
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

#: ``image``: whole images, the config's preprocessor; ``image_same_preprocessor``: whole
#: images through the canvas run's preprocessor settings (isolates the canvas from the
#: settings it needs: on whole images of exactly the config's size those pad nothing, but
#: ``pad_mask=True`` still copies every instance mask); ``windows``: canvases.
MODES = ('image', 'image_same_preprocessor', 'windows')

SETTINGS = {
    'seg': dict(cfg='configs/winwin/winwin-2x22_upernet_rope-vit-b16_8xb2-80k_bdd100k-720x1280.py',
                scope='mmseg', hw=(720, 1280),
                canvas_pre=dict(size=None, size_divisor=16)),
    'det': dict(cfg='configs/vitdet/winwin-2x28_mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py',
                scope='mmdet', hw=(1024, 1024),
                canvas_pre=dict(pad_mask=False, batch_augments=None)),
}


def _results(name: str, hw, rng, instances: int) -> dict:
    h, w = hw
    res = dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_shape=(h, w),
               ori_shape=(h, w), img_path=f'{name}.png', scale_factor=(1.0, 1.0), flip=False,
               flip_direction=None)
    if name == 'seg':
        res['gt_seg_map'] = rng.integers(0, 19, (h, w)).astype(np.uint8)
        return res
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    xy = rng.integers(0, min(h, w) - 100, (instances, 2))
    boxes = np.concatenate([xy, xy + rng.integers(20, 100, (instances, 2))], 1)
    masks = np.zeros((instances, h, w), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        masks[k, y1:y2, x1:x2] = 1
    res.update(img_id=0, gt_bboxes=HorizontalBoxes(torch.as_tensor(boxes, dtype=torch.float32)),
               gt_bboxes_labels=np.zeros(instances, np.int64),
               gt_ignore_flags=np.zeros(instances, bool), gt_masks=BitmapMasks(masks, h, w))
    return res


def _median_ms(fn, repeats: int, device) -> float:
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        args = fn.setup()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(args)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times[1:])


def measure(name: str, batch: int, repeats: int, instances: int, device) -> dict:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmwinwin  # noqa: F401  (registers the modules)
    del mmwinwin
    from mmwinwin.datasets.winwin import WinWinPackDetInputs, WinWinPackSegInputs, WinWinWindows
    setting = SETTINGS[name]
    init_default_scope(setting['scope'])
    if setting['scope'] == 'mmseg':
        from mmseg.registry import MODELS
        packer_cls = WinWinPackSegInputs
    else:
        from mmdet.registry import MODELS
        packer_cls = WinWinPackDetInputs
    cfg = Config.fromfile(os.path.join(ROOT, setting['cfg']))
    pipeline = cfg.train_dataloader.dataset.get('pipeline') or \
        cfg.train_dataloader.dataset.dataset.pipeline
    win_cfg = next(t for t in pipeline if t['type'] == 'WinWinWindows')
    windows = WinWinWindows(num_windows=win_cfg['num_windows'],
                            window_size=win_cfg['window_size'], patch_size=16, seed=0)
    rng = np.random.default_rng(0)
    results = [windows(_results(name, setting['hw'], rng, instances)) for _ in range(batch)]

    out = dict(config=setting['cfg'], image_hw=list(setting['hw']), batch=batch,
               windows=[r['winwin_windows'] for r in results])
    for mode in MODES:
        pixels = 'windows' if mode == 'windows' else 'image'
        pre_cfg = copy.deepcopy(cfg.model.data_preprocessor)
        if mode != 'image':
            pre_cfg.update(setting['canvas_pre'])
        pre = MODELS.build(pre_cfg).to(device)
        packer = packer_cls(pixels=pixels)

        def pack(_):
            return [packer(dict(r)) for r in results]
        pack.setup = lambda: None
        packed = pack(None)

        def preprocess(data):
            return pre(data, True)
        preprocess.setup = lambda: dict(inputs=[p['inputs'] for p in packed],
                                        data_samples=copy.deepcopy(
                                            [p['data_samples'] for p in packed]))
        prepared = preprocess(preprocess.setup())['inputs']
        out[mode] = dict(
            packer_ms=_median_ms(pack, repeats, torch.device('cpu')),
            preprocessor_ms=_median_ms(preprocess, repeats, device),
            packed_input_bytes=sum(p['inputs'].numel() * p['inputs'].element_size()
                                   for p in packed),
            preprocessed_shape=list(prepared.shape),
            preprocessed_bytes=prepared.numel() * prepared.element_size())
    for key in ('packer_ms', 'preprocessor_ms', 'packed_input_bytes', 'preprocessed_bytes'):
        out[f'{key}_canvas_over_image'] = out['windows'][key] / out['image'][key]
        out[f'{key}_canvas_over_image_same_preprocessor'] = \
            out['windows'][key] / out['image_same_preprocessor'][key]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--settings', nargs='+', default=['seg', 'det'], choices=sorted(SETTINGS))
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--instances', type=int, default=10, help='instance masks per det image')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--out', help='write the results as JSON here')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = {name: measure(name, args.batch, args.repeats, args.instances, device)
            for name in args.settings}
    print('| setting | input | packer ms | preprocessor ms | packed MB | preprocessed shape | '
          'preprocessed MB |')
    print('|---|---|---|---|---|---|---|')
    for name, r in rows.items():
        for mode in MODES:
            m = r[mode]
            print(f"| {name} {r['image_hw'][1]}x{r['image_hw'][0]} | {mode} | {m['packer_ms']:.1f} | "
                  f"{m['preprocessor_ms']:.1f} | {m['packed_input_bytes'] / 2**20:.2f} | "
                  f"{tuple(m['preprocessed_shape'])} | {m['preprocessed_bytes'] / 2**20:.2f} |")
        print(f"| {name} | canvas / image | {r['packer_ms_canvas_over_image']:.2f} | "
              f"{r['preprocessor_ms_canvas_over_image']:.2f} | "
              f"{r['packed_input_bytes_canvas_over_image']:.2f} | | "
              f"{r['preprocessed_bytes_canvas_over_image']:.2f} |")
        print(f"| {name} | canvas / image_same_preprocessor | "
              f"{r['packer_ms_canvas_over_image_same_preprocessor']:.2f} | "
              f"{r['preprocessor_ms_canvas_over_image_same_preprocessor']:.2f} | "
              f"{r['packed_input_bytes_canvas_over_image_same_preprocessor']:.2f} | | "
              f"{r['preprocessed_bytes_canvas_over_image_same_preprocessor']:.2f} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
