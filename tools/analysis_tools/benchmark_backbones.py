"""CPU cost of mmwinwin's pretrained-family ViT-B forward against timm's own forward of the
same model with the same weights, side by side.

For each family (DINOv3 B/16, EVA-02 B/14, RoPE-ViT RoPE-Axial and RoPE-Mixed B/16, PE-Spatial
B/16) timm's model (``timm.models.eva``, random weights, every 1-D parameter randomised) is
built, its state dict loaded into mmwinwin's preset (``RoPEVisionTransformer(arch=...)``,
through the ordinary checkpoint conversion) and both run the same ``--size`` image under
``torch.inference_mode`` with ``torch.set_num_threads(--threads)``: mmwinwin's
``forward(img)`` (feature map of the last block, after the final norm) and timm's
``forward_features(img)`` (all tokens after the final norm). The two models alternate one
call at a time (and which goes first alternates each round), so a slow spell of a shared
machine hits both; min and median wall-clock seconds over ``--repeats`` calls after
``--warmup`` are printed with the ratio mmwinwin / timm, the ratio of the median process CPU
time (less sensitive than wall time to other processes on a contended machine), and the
largest difference of the patch tokens (a check that the same model runs). Needs timm (the
tests extra)::

    python tools/analysis_tools/benchmark_backbones.py --threads 2 --repeats 7
    python tools/analysis_tools/benchmark_backbones.py --families pe --json out.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os

import torch

from mmwinwin.layers import RoPEVisionTransformer, load_vit_state_dict
from mmwinwin.utils.benchmark import Timing, time_fn

# family: (mmwinwin preset, timm model, patch)
FAMILIES = {
    'dinov3': ('dinov3-vitb16', 'vit_base_patch16_dinov3', 16),
    'eva02': ('eva02-vitb14', 'eva02_base_patch14_224', 14),
    'naver-axial': ('naver-rope-axial-vitb16', 'vit_base_patch16_rope_224', 16),
    'naver-mixed': ('naver-rope-mixed-vitb16', 'vit_base_patch16_rope_mixed_224', 16),
    'pe': ('pe-spatial-vitb16', 'vit_pe_spatial_base_patch16_512', 16),
}


def build_pair(family: str, seed: int = 0):
    """(mmwinwin model, timm model) of ``family`` holding the same random weights."""
    import timm
    arch, timm_name, _ = FAMILIES[family]
    torch.manual_seed(seed)
    ref = timm.create_model(timm_name, pretrained=False, num_classes=0, dynamic_img_size=True,
                            dynamic_img_pad=True).eval()
    with torch.no_grad():
        for p in ref.parameters():
            if p.dim() < 2 or p.shape[0] == 1:
                p.normal_(0.0, 0.3)
    ours = RoPEVisionTransformer(arch=arch).eval()
    load_vit_state_dict(ours, ref.state_dict())
    return ours, ref


def measure(family: str, size: int, warmup: int, repeats: int) -> dict:
    ours, ref = build_pair(family)
    patch = FAMILIES[family][2]
    img = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        got = ours(img)[-1].flatten(2).transpose(1, 2)
        want = ref.forward_features(img)
        want = ref.fc_norm(want)[:, ref.num_prefix_tokens:]  # fc_norm: EVA-02's final norm
        diff = float((got - want).abs().max())
        run_ours, run_timm = (lambda: ours(img)), (lambda: ref.forward_features(img))
        for _ in range(warmup):
            run_ours(), run_timm()
        t_ours, t_timm = Timing(), Timing()
        for r in range(repeats):
            pair = ((run_ours, t_ours), (run_timm, t_timm))
            for fn, timing in (pair if r % 2 == 0 else pair[::-1]):
                time_fn(fn, warmup=0, repeats=1, timing=timing)
    tokens = math.ceil(size / patch) ** 2
    return dict(family=family, arch=FAMILIES[family][0], timm=FAMILIES[family][1], size=size,
                tokens=tokens, max_abs_diff=diff, ours=t_ours.as_dict(), timm_=t_timm.as_dict(),
                ratio_min=t_ours.min / t_timm.min, ratio_median=t_ours.median / t_timm.median,
                ratio_cpu_median=t_ours.cpu_median / t_timm.cpu_median)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--families', nargs='+', choices=sorted(FAMILIES), default=list(FAMILIES))
    parser.add_argument('--size', type=int, default=512, help='square input size in pixels')
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--json', help='also write the measurements here')
    args = parser.parse_args()
    if importlib.util.find_spec('timm') is None:
        raise SystemExit('This benchmark compares against timm: pip install -e .[tests] '
                         '(timm==1.0.31 with torch==2.13.0 on the same command).')
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs visible, '
          f'{args.size}x{args.size}, batch 1, {args.repeats} alternating calls each after '
          f'{args.warmup} warm-up')
    print(f'{"family":12s} {"mmwinwin preset":26s} {"tokens":>6s} {"ours min/med s":>15s} '
          f'{"timm min/med s":>15s} {"ratio min":>9s} {"ratio med":>9s} {"ratio cpu":>9s} '
          f'{"max|diff|":>9s}')
    rows = []
    for family in args.families:
        r = measure(family, args.size, args.warmup, args.repeats)
        rows.append(r)
        print(f'{family:12s} {r["arch"]:26s} {r["tokens"]:6d} '
              f'{r["ours"]["min_s"]:7.3f}/{r["ours"]["median_s"]:<7.3f} '
              f'{r["timm_"]["min_s"]:7.3f}/{r["timm_"]["median_s"]:<7.3f} '
              f'{r["ratio_min"]:9.3f} {r["ratio_median"]:9.3f} {r["ratio_cpu_median"]:9.3f} '
              f'{r["max_abs_diff"]:9.1e}',
              flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(threads=args.threads, size=args.size, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
