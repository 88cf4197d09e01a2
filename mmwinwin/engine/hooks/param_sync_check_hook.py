"""``ParamSyncCheckHook``: verify that every rank holds the same weights.

Distributed data-parallel training must keep the replicas identical; a silent drift
(an unsynchronised buffer, a rank-dependent branch) wastes a whole run. After
training (and every ``interval`` iterations when set) the hook gathers a checksum of
each parameter from every rank, writes them to ``work_dir/param_sync.json`` and
raises if the ranks disagree.
"""
from __future__ import annotations

import json
import os.path as osp

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ...registry import register


def parameter_checksums(model: torch.nn.Module) -> dict[str, list[float]]:
    """(sum, sum of squares) of every parameter, in float64."""
    if is_model_wrapper(model):
        model = model.module
    out = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            d = p.detach().double()
            out[name] = [float(d.sum()), float((d * d).sum())]
    return out


@register('HOOKS')
class ParamSyncCheckHook(Hook):
    """Args: interval: also check every ``interval`` training iterations (0 = end only);
    atol: allowed absolute difference between ranks' checksums."""

    priority = 'VERY_LOW'

    def __init__(self, interval: int = 0, atol: float = 0.0) -> None:
        self.interval = interval
        self.atol = atol

    def _check(self, runner) -> None:
        sums = all_gather_object(parameter_checksums(runner.model))
        worst = 0.0
        for name, ref in sums[0].items():
            for other in sums[1:]:
                worst = max(worst, *(abs(a - b) for a, b in zip(ref, other[name])))
        if get_rank() == 0:
            with open(osp.join(runner.work_dir, 'param_sync.json'), 'w') as f:
                json.dump(dict(world_size=get_world_size(), iter=runner.iter,
                               max_abs_diff=worst, checksums=sums), f)
        if worst > self.atol:
            raise RuntimeError(f'Parameters differ across ranks at iteration {runner.iter} '
                               f'(max checksum difference {worst:g}); see param_sync.json.')
        runner.logger.info(f'ParamSyncCheckHook: {get_world_size()} ranks hold identical '
                           f'parameters at iteration {runner.iter}.')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self._check(runner)

    def after_train(self, runner) -> None:
        self._check(runner)
