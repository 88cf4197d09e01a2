"""``CPUSyncBatchNorm``: batch norm whose batch statistics are all-reduced over the ranks
of a ``torch.distributed`` process group, on any device and backend (gloo on CPU).

``torch.nn.SyncBatchNorm`` (mmcv's ``SyncBN``) runs on CUDA only; DDP refuses a CPU module
holding one ("SyncBatchNorm layers only work with GPU modules"). In training, this layer
computes per channel the sum and the count of the local batch, all-reduces them (mean of
the whole distributed batch), then all-reduces the sum of squared deviations from that
mean (two passes, numerically stable). Output, running mean / unbiased running variance
and gradients equal those of plain batch norm over the concatenation of every rank's
batch. The all-reduces are ``torch.distributed.nn.functional.all_reduce`` (differentiable:
the backward all-reduces the gradients of the statistics, as ``nn.SyncBatchNorm`` does).
Outside training, or without an initialised process group of more than one rank, it is
plain batch norm. Parameter and buffer names are those of ``nn.BatchNorm*d``.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ['CPUSyncBatchNorm', 'convert_sync_batchnorm_for_cpu']


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over ``(N, C, ...)`` inputs with statistics synchronised across ranks.

    Args are those of ``nn.SyncBatchNorm``: ``num_features``, ``eps``, ``momentum``
    (``None``: cumulative average), ``affine``, ``track_running_stats`` and
    ``process_group`` (``None``: the default group).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats,
                         device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'CPUSyncBatchNorm expects (N, C, ...) input, got shape '
                             f'{tuple(input.shape)}.')

    def _world_size(self) -> int:
        if not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(f'CPUSyncBatchNorm has {self.num_features} channels but the '
                             f'input has {input.shape[1]} (shape {tuple(input.shape)}).')
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else factor
        use_batch_stats = self.training or self.running_mean is None
        if not (use_batch_stats and self.training and self._world_size() > 1):
            return F.batch_norm(
                input,
                self.running_mean if not self.training or self.track_running_stats else None,
                self.running_var if not self.training or self.track_running_stats else None,
                self.weight, self.bias, use_batch_stats, factor, self.eps)
        return self._synced(input, factor)

    def _synced(self, input: torch.Tensor, factor: float) -> torch.Tensor:
        from torch.distributed.nn.functional import all_reduce
        C = self.num_features
        compute = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
        flat = input.transpose(0, 1).reshape(C, -1).to(compute)  # (C, local count)
        count = flat.new_full((1,), float(flat.shape[1]))
        summed = all_reduce(torch.cat([flat.sum(1), count]), group=self.process_group)
        total = summed[C]
        if float(total) < 2:
            raise ValueError('CPUSyncBatchNorm needs more than one value per channel over '
                             f'all ranks in training, got input of shape {tuple(input.shape)} '
                             f'and {int(total)} value(s) in total.')
        mean = summed[:C] / total
        centred = flat - mean[:, None]
        sq = all_reduce(centred.pow(2).sum(1), group=self.process_group)
        var = sq / total  # biased: normalisation
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean),
                                                       alpha=factor)
                unbiased = (sq.detach() / (total.detach() - 1)).to(self.running_var)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        out = centred * torch.rsqrt(var + self.eps)[:, None]
        if self.affine:
            out = out * self.weight.to(compute)[:, None] + self.bias.to(compute)[:, None]
        shape = (C, input.shape[0], *input.shape[2:])
        return out.reshape(shape).transpose(0, 1).to(input.dtype)


def convert_sync_batchnorm_for_cpu(module: nn.Module, process_group=None) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` by a :class:`CPUSyncBatchNorm` that
    shares its parameters and buffers (same names, so checkpoints are unchanged)."""
    if isinstance(module, nn.SyncBatchNorm):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats,
                               process_group if process_group is not None
                               else module.process_group)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        converted = convert_sync_batchnorm_for_cpu(child, process_group)
        if converted is not child:
            setattr(module, name, converted)
    return module
