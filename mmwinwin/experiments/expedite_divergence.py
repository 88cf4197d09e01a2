"""How far each non-official Expedite option departs from the official operators.

For each of the paper's settings (Segmenter ViT-L ADE20K, DPT, Mask2Former Swin-L per
12x12 window) this clusters random tokens with the official operators (mmwinwin's
defaults) and with each named option alone (and all former local options together),
and prints the relative difference ``||a - b|| / ||b||`` of

* the centres after clustering, and
* the reconstructed tokens (the centres themselves stand in for the later layers, so
  the figure measures clustering and reconstruction together),

plus the share of tokens whose candidate set the option changes, the share of tokens
whose reconstruction moves by more than 1 % (relative), and for the Swin bias
the relative difference of a resized relative-position-bias table.

Tokens: ``--tokens iid`` (independent Gaussian) or ``smooth`` (Gaussian noise blurred
over the grid, closer to real feature maps), scaled so that the median ``t * D`` between
a token and its initial centre is ``--td`` (10 is what docs/expedite.md recommends when
picking ``t``). Pure PyTorch (needs only torch and mmwinwin.layers).

    python -m mmwinwin.experiments.expedite_divergence [--tokens smooth] [--td 10] [--seeds 3]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from mmwinwin.layers import (ExpediteSettings, candidate_index, cluster_partitions,
                             cluster_sequence, reconstruct_partitions, reconstruct_tokens)
from mmwinwin.layers.expedite.local_neighbors import candidate_mask
from mmwinwin.models.expedite.partitioned import resize_relative_position_bias

#: the paper's settings (papers.md section 2): token grid, window of partitions or None
SETTINGS = {
    'Segmenter ViT-L ADE20K 640 (40x40 -> 28x28)':
        dict(grid=(40, 40), partition=None,
             expedite=dict(alpha=1, cluster_grid=(28, 28), window=5, temperature=0.02, k=20)),
    'DPT NYUv2 (40x40 -> 28x28, t 1.0)':
        dict(grid=(40, 40), partition=None,
             expedite=dict(alpha=1, cluster_grid=(28, 28), window=5, temperature=1.0, k=20)),
    'Swin-L panoptic 1024x1024, stage 3 (64x64 tokens, 12x12 windows -> 8x8)':
        dict(grid=(64, 64), partition=12,
             expedite=dict(alpha=1, num_clusters=64, window=7, temperature=0.05, k=10)),
}

OPTIONS = [
    ('official (defaults)', {}),
    ("candidate_window='shifted'", dict(candidate_window='shifted')),
    ("reconstruction_topk='local'", dict(reconstruction_topk='local')),
    ("empty_cluster='keep'", dict(empty_cluster='keep')),
    ("partition_padding='replicate'", dict(partition_padding='replicate')),
    ('all former local options', dict(candidate_window='shifted', reconstruction_topk='local',
                                      empty_cluster='keep', partition_padding='replicate',
                                      bias_resize='bicubic-aligned')),
]


def make_tokens(B: int, grid: tuple[int, int], C: int, kind: str,
                gen: torch.Generator) -> torch.Tensor:
    """``(B, H, W, C)`` random tokens, unit variance per channel."""
    H, W = grid
    x = torch.randn(B, C, H, W, generator=gen)
    if kind == 'smooth':
        k = torch.tensor([1., 4., 6., 4., 1.])
        k = (k[:, None] * k[None]) / 256
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode='reflect'),
                     k.expand(C, 1, 5, 5).contiguous(), groups=C)
        x = x + 0.3 * torch.randn(x.shape, generator=gen)
        x = x / x.std()
    return x.permute(0, 2, 3, 1).contiguous()


def scale_to_td(x: torch.Tensor, cluster_grid: tuple[int, int], t: float, td: float,
                partition: int | None) -> torch.Tensor:
    """Scale tokens so that the median ``t * |x - initial centre|^2`` is ``td``."""
    B, H, W, C = x.shape
    grid = x.permute(0, 3, 1, 2)
    if partition is None:
        pooled = F.adaptive_avg_pool2d(grid, cluster_grid)
        up = F.interpolate(pooled, size=(H, W), mode='nearest')
        d = (grid - up).square().sum(1)
    else:  # per window: an approximation with the window-wise pooled centres (no padding)
        cg = cluster_grid
        h, w = H // partition * partition, W // partition * partition
        g = grid[:, :, :h, :w]
        pooled = F.adaptive_avg_pool2d(g, (h // partition * cg[0], w // partition * cg[1]))
        up = F.interpolate(pooled, size=(h, w), mode='nearest')
        d = (g - up).square().sum(1)
    return x * (td / (t * d.median())).sqrt()


def run(x: torch.Tensor, setting: dict, options: dict):
    """Centres (flattened) and reconstructed tokens ``(B, H*W, C)``."""
    s = ExpediteSettings(**{**setting['expedite'], **options})
    B, H, W, C = x.shape
    if setting['partition'] is None:
        _, _, res, weights = cluster_sequence(x.reshape(B, H * W, C), 0, (H, W), s)
        return res.centers, reconstruct_tokens(res.centers, weights)
    pc = cluster_partitions(x, setting['partition'], s)
    return pc.centers, reconstruct_partitions(pc.centers, pc).reshape(B, H * W, C)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def share_changed(a: torch.Tensor, b: torch.Tensor, tol: float = 0.01) -> float:
    """Share of tokens whose reconstructed vector moved by more than ``tol`` relative."""
    d = (a.double() - b.double()).norm(dim=-1)
    return (d > tol * b.double().norm(dim=-1)).double().mean().item()


def changed_candidates(setting: dict) -> float:
    """Share of tokens whose cut window differs from the shifted one."""
    e = setting['expedite']
    if setting['partition'] is None:
        grid, cg = setting['grid'], e['cluster_grid']
    else:
        ws = setting['partition']
        grid = (ws, ws)
        cg = ExpediteSettings(**e).grid_for(grid)
    idx = candidate_index(grid, cg, e['window'])
    return (~candidate_mask(grid, cg, e['window'], idx)).any(-1).float().mean().item()


def bias_divergence(gen: torch.Generator) -> float:
    """Relative difference of a Swin-L table (window 12, 6 heads) resized to 8x8 clusters,
    bicubic-aligned vs bilinear unaligned; the table is a smooth random field."""
    t = torch.randn(1, 6, 23, 23, generator=gen)
    t = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
    table = t.reshape(6, -1).t()
    return rel(resize_relative_position_bias(table, 12, 8, 'bicubic-aligned'),
               resize_relative_position_bias(table, 12, 8, 'bilinear'))


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tokens', choices=('iid', 'smooth'), default='smooth')
    parser.add_argument('--td', type=float, default=10.0,
                        help='median t * D between a token and its initial centre')
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--only', default=None, help='run only settings whose name has this')
    args = parser.parse_args(argv)
    lines = [f'tokens: {args.tokens}, median t*D = {args.td}, C = {args.channels}, '
             f'batch {args.batch}, mean over {args.seeds} seeds', '',
             '| setting | option | tokens with other candidates | rel. diff. centres '
             '| rel. diff. reconstructed | tokens moved > 1 % |', '|---|---|---|---|---|---|']
    for name, setting in SETTINGS.items():
        if args.only and args.only not in name:
            continue
        e = setting['expedite']
        cg = (ExpediteSettings(**e).grid_for((setting['partition'],) * 2)
              if setting['partition'] else e['cluster_grid'])
        results = {label: [0.0, 0.0, 0.0] for label, _ in OPTIONS}
        for seed in range(args.seeds):
            gen = torch.Generator().manual_seed(seed)
            x = make_tokens(args.batch, setting['grid'], args.channels, args.tokens, gen)
            x = scale_to_td(x, cg, e['temperature'], args.td, setting['partition'])
            with torch.no_grad():
                ref_c, ref_out = run(x, setting, {})
                for label, opt in OPTIONS:
                    if setting['partition'] is None and 'partition_padding' in opt \
                            and len(opt) == 1:
                        continue
                    c, out = run(x, setting, opt)
                    results[label][0] += rel(c, ref_c) / args.seeds
                    results[label][1] += rel(out, ref_out) / args.seeds
                    results[label][2] += share_changed(out, ref_out) / args.seeds
        share = changed_candidates(setting)
        for label, opt in OPTIONS:
            if setting['partition'] is None and 'partition_padding' in opt and len(opt) == 1:
                continue
            cand = f'{100 * share:.1f} %' if 'candidate_window' in opt else '0 %'
            lines.append(f'| {name} | {label} | {cand} | {results[label][0]:.2e} '
                         f'| {results[label][1]:.2e} | {100 * results[label][2]:.1f} % |')
    lines += ['', f"Swin bias table 12 -> 8 clusters, 'bicubic-aligned' vs 'bilinear': "
                  f"rel. diff. {bias_divergence(torch.Generator().manual_seed(0)):.2e}"]
    text = '\n'.join(lines)
    print(text)
    return text


if __name__ == '__main__':
    main()
