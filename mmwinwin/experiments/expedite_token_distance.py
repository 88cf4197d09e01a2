"""Median squared token-to-centre distance of a trained windowed RoPE ViT detector, per block.

Expedite's assignment is ``softmax(-t * D)`` over squared distances ``D``, so ``t`` must match
the model's feature scale (docs/expedite.md): this prints, for every possible ``alpha``,
the median ``D`` between the tokens after block ``alpha`` and their window's initial
(average-pooled) cluster centres on the config's test set, and ``t`` for ``t * D ~ 10``.

    python -m mmwinwin.experiments.expedite_token_distance CONFIG CHECKPOINT --grid 2 [--max-images 40]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F


def _distance_policy_class():
    """The policy class, built lazily so ``--help`` needs no mmwinwin import."""
    from mmwinwin.layers.vit.vitdet import PartitionedAttentionPolicy

    class DistancePolicy(PartitionedAttentionPolicy):
        """ViTDet's policy that also records, after each block but the last, the squared
        distances of every window's tokens to its ``grid x grid`` average-pooled centres."""

        def __init__(self, hw, ws, grid, dists):
            super().__init__(hw)
            self.ws, self.grid, self.dists = ws, grid, dists

        def after_block(self, index, state):
            if index + 1 not in self.dists:  # the last block: no alpha after it
                return
            (H, W), ws, x = self.hw, self.ws, state.x
            B, _, C = x.shape
            win = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
            win = win.reshape(-1, ws, ws, C)
            cen = F.adaptive_avg_pool2d(win.permute(0, 3, 1, 2), self.grid).flatten(2).transpose(1, 2)
            self.dists[index + 1].append(
                torch.cdist(win.reshape(-1, ws * ws, C), cen).square().flatten())

    return DistancePolicy


def token_distances(cfg_path: str, checkpoint: str, grid: int,
                    max_images: int | None = None) -> dict[int, torch.Tensor]:
    """``{alpha: squared distances (tokens x grid^2 centres), flattened}`` on the test set."""
    import mmwinwin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmdet.registry import MODELS
    from mmwinwin.layers.vit.block_loop import run_blocks
    from mmwinwin.layers.vit.rope import grid_positions
    from mmwinwin.utils import load_checkpoint_strict
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model).eval()
    load_checkpoint_strict(model, checkpoint)
    vit = model.backbone
    if not hasattr(vit, 'run_windowed_block'):
        raise ValueError(f'{type(vit).__name__} is not a windowed RoPE ViT (RoPEViTDet); '
                         'this tool reads windowed ViTDet-style backbones only.')
    ws = vit.partition_size
    if not 1 <= grid <= ws:
        raise ValueError(f'--grid must be in [1, partition_size={ws}], got {grid}.')
    dists: dict[int, list[torch.Tensor]] = {a: [] for a in range(1, vit.num_layers)}
    DistancePolicy = _distance_policy_class()
    seen = 0
    with torch.no_grad():
        for batch in Runner.build_dataloader(cfg.test_dataloader):
            img = model.data_preprocessor(batch, False)['inputs']
            tokens, hw = vit.patch_embed(img)
            H, W = hw
            if H % ws or W % ws:
                raise ValueError(f'token grid {hw} is not a multiple of the window {ws}; '
                                 'pad test images to a multiple of patch * window.')
            pos = grid_positions(H, W, device=tokens.device)
            x = vit.prepare_tokens(tokens, pos, hw)
            # the model's own block loop and ViTDet policy; distances after each block
            run_blocks(vit, x, pos, DistancePolicy(hw, ws, grid, dists), out_indices=())
            seen += img.shape[0]
            if max_images is not None and seen >= max_images:
                break
    return {a: torch.cat(d) for a, d in dists.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--grid', type=int, required=True, help='clusters per window side (2 = 2x2)')
    p.add_argument('--max-images', type=int, default=None)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for a, d in token_distances(args.config, args.checkpoint, args.grid, args.max_images).items():
        med = d.median().item()
        nearest = d.view(-1, args.grid ** 2).min(-1).values.median().item()
        print(f'alpha={a}: median D {med:.3g} (to the nearest centre {nearest:.3g}); '
              f't for t*D~10: {10 / med:.3g}')


if __name__ == '__main__':
    main()
