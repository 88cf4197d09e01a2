"""``ParamSyncCheckHook``: verify that every rank holds the same weights and buffers.

Distributed data-parallel training must keep the replicas identical; a silent drift
(an unsynchronised buffer such as BatchNorm's running statistics, a rank-dependent
branch) wastes a whole run. After training (and every ``interval`` iterations when set)
the hook gathers, from every rank, a fingerprint of each parameter *and each buffer* of
the model -- a hash of its exact bytes and its (sum, sum of squares) in float64 -- writes
them to ``work_dir/param_sync.json`` and raises naming the tensors that differ.
Iterations are reported 1-based, as mmengine's logs count them (``Iter(train) [5/20]``).
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...registry import register

__all__ = ['ParamSyncCheckHook', 'parameter_checksums', 'tensor_fingerprints']


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def parameter_checksums(model: torch.nn.Module) -> dict[str, list[float]]:
    """(sum, sum of squares) of every parameter and buffer, in float64."""
    out = {}
    with torch.no_grad():
        for name, t in _named_tensors(_unwrap(model)):
            d = t.detach().double()
            out[name] = [float(d.sum()), float((d * d).sum())]
    return out


def _named_tensors(model: torch.nn.Module):
    yield from model.named_parameters()
    yield from model.named_buffers()


def tensor_fingerprints(model: torch.nn.Module) -> dict[str, str]:
    """SHA-1 of the exact bytes (and dtype, shape) of every parameter and buffer."""
    out = {}
    for name, t in _named_tensors(_unwrap(model)):
        c = t.detach().cpu().contiguous()
        h = hashlib.sha1(f'{c.dtype}{tuple(c.shape)}'.encode())
        h.update(c.reshape(-1).view(torch.uint8).numpy().tobytes() if c.numel() else b'')
        out[name] = h.hexdigest()
    return out


@register('HOOKS')
class ParamSyncCheckHook(Hook):
    """Args: interval: also check every ``interval`` training iterations (0 = end only);
    atol: allowed absolute difference between ranks' checksums (0: the tensors must be
    bit-identical)."""

    priority = 'VERY_LOW'

    def __init__(self, interval: int = 0, atol: float = 0.0) -> None:
        self.interval = interval
        self.atol = atol

    def _check(self, runner, iteration: int) -> None:
        model = runner.model
        buffers = [n for n, _ in _unwrap(model).named_buffers()]
        sums = all_gather_object(parameter_checksums(model))
        prints = all_gather_object(tensor_fingerprints(model))
        worst, differing = 0.0, []
        for name, ref in sums[0].items():
            diff = max([abs(a - b) for other in sums[1:] for a, b in zip(ref, other[name])],
                       default=0.0)
            worst = max(worst, diff)
            exact = all(p[name] == prints[0][name] for p in prints[1:])
            if diff > self.atol or (self.atol == 0 and not exact):
                differing.append(name)
        if get_rank() == 0:
            with open(osp.join(runner.work_dir, 'param_sync.json'), 'w') as f:
                json.dump(dict(world_size=get_world_size(), iter=iteration,
                               max_abs_diff=worst, differing=differing,
                               buffers=buffers, checksums=sums), f)
        if differing:
            bufs = [n for n in differing if n in buffers]
            raise RuntimeError(
                f'{len(differing)} of {len(sums[0])} parameters and buffers differ across '
                f'ranks at iteration {iteration} ({len(bufs)} of them buffers, e.g. '
                f'BatchNorm running statistics; max checksum difference {worst:g}): '
                f'{differing[:10]}{" ..." if len(differing) > 10 else ""}. Unsynchronised '
                'BatchNorm statistics: use SyncBN (norm_cfg=dict(type="SyncBN")); see '
                'param_sync.json.')
        runner.logger.info(f'ParamSyncCheckHook: {get_world_size()} ranks hold identical '
                           f'parameters and buffers ({len(sums[0])} tensors) at iteration '
                           f'{iteration}.')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self._check(runner, runner.iter + 1)  # runner.iter counts from 0 until after

    def after_train(self, runner) -> None:
        self._check(runner, runner.iter)  # the loop has counted the last iteration
