"""Measurement helpers shared by every benchmark (pure PyTorch: no mmengine / mmseg / mmdet).

* :func:`time_fn` -- wall-clock (and process CPU) time of a callable: ``warmup`` untimed
  calls, then ``repeats`` timed ones, with ``torch.cuda.synchronize`` around each call
  on CUDA; a :class:`Timing` gives median / min / mean.
* :class:`PeakMemory` -- peak memory of a block of code. CUDA:
  ``torch.cuda.max_memory_allocated`` (reset at the start). CPU (Linux): the process's
  peak resident set ``VmHWM``, reset to the current RSS at the start through
  ``/proc/self/clear_refs``; ``growth_bytes`` is the peak minus the RSS at the start.
  glibc keeps freed small blocks and may keep large ones, so the RSS lags behind live
  memory; :func:`pin_malloc_threshold` (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``) makes
  every tensor buffer an ``mmap`` returned to the OS when freed, so the peak RSS follows
  the peak of live tensors (it slows allocation: measure time separately).
* :func:`count_macs` -- multiply-accumulates (FLOPs / 2, as the papers report GFLOPs) of
  a callable, with ``torch.utils.flop_counter.FlopCounterMode``. Torch's own table counts
  matmuls, convolutions and the CUDA attention kernels; registered here as well are
  ``aten::scaled_dot_product_attention`` and every fused variant torch has (CPU flash,
  flash, efficient, cuDNN, the overrideable one, forward and backward) and native
  multi-head attention, so that a model with fused attention counts the same as with
  the math kernel (which decomposes into counted ``bmm``). Element-wise ops, softmax,
  norms and resizes are not counted (as fvcore / mmcv counters do).
* :func:`sdpa_kernels` -- which SDPA kernel(s) a callable ran (flash / cudnn /
  efficient / math / ...), recorded from the aten ops dispatched.
"""
from __future__ import annotations

import ctypes
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

__all__ = ['Timing', 'time_fn', 'synchronize', 'PeakMemory', 'pin_malloc_threshold',
           'count_macs', 'sdpa_macs', 'sdpa_kernels', 'SDPA_KERNEL_OPS']


# ---------------------------------------------------------------------------- time
def synchronize(device: torch.device | str | None) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device is not None and torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of each timed call (wall clock) and of process CPU time."""
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times)

    def as_dict(self) -> dict:
        return dict(median_s=self.median, min_s=self.min, mean_s=self.mean,
                    cpu_median_s=self.cpu_median, times_s=list(self.times))


def time_fn(fn: Callable[[], Any], device: torch.device | str | None = None, *,
            warmup: int = 1, repeats: int = 3, timing: Timing | None = None) -> Timing:
    """Time ``repeats`` calls of ``fn`` after ``warmup`` untimed ones.

    On CUDA the device is synchronised before and after each call, so the time covers
    the queued kernels. Pass ``timing`` to append to an existing :class:`Timing` (e.g.
    when interleaving several functions one call at a time).
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}.')
    timing = Timing() if timing is None else timing
    for _ in range(warmup):
        fn()
    for _ in range(repeats):
        synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        timing.times.append(time.perf_counter() - t0)
        timing.cpu_times.append(time.process_time() - c0)
    return timing


# -------------------------------------------------------------------------- memory
_LIBC = None


def pin_malloc_threshold(threshold: int = 128 * 1024) -> bool:
    """Make glibc serve every allocation above ``threshold`` bytes by ``mmap`` (returned
    to the OS on free), so the CPU peak RSS follows live tensors. Returns False where
    glibc is not available (the RSS then over-states the live peak)."""
    global _LIBC
    try:
        _LIBC = ctypes.CDLL('libc.so.6')
        _LIBC.mallopt(-3, int(threshold))  # M_MMAP_THRESHOLD, fixed (no dynamic growth)
        return True
    except (OSError, AttributeError):
        _LIBC = None
        return False


def _status_kib(name: str) -> int | None:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(name + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.peak_bytes`` (the absolute peak:
    CUDA allocated bytes, or the CPU process's peak RSS) and ``m.growth_bytes`` (the
    peak minus what was in use at the start: activations, gradients, temporaries).
    ``m.method`` names what was measured."""

    def __init__(self, device: torch.device | str = 'cpu') -> None:
        self.device = torch.device(device)
        self.start_bytes = 0
        self.peak_bytes = 0
        self.method = ''

    @property
    def growth_bytes(self) -> int:
        return self.peak_bytes - self.start_bytes

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2 ** 20

    @property
    def growth_mib(self) -> float:
        return self.growth_bytes / 2 ** 20

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = 'torch.cuda.max_memory_allocated'
            return self
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        rss = _status_kib('VmRSS')
        if rss is None:
            raise RuntimeError('CPU peak memory needs Linux /proc/self/status (VmRSS, VmHWM); '
                               'run on Linux or on CUDA.')
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            self.method = 'CPU peak RSS (VmHWM, reset)'
        except OSError:
            self.method = 'CPU peak RSS (VmHWM, not resettable: process lifetime peak)'
        self.start_bytes = rss * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak_bytes = (_status_kib('VmHWM') or 0) * 1024


# ------------------------------------------------------------------------------ MACs
def _sdpa_flops(q, k, v, *args, **kwargs) -> int:
    """FLOPs of softmax(q k^T) v from the shapes: 2*B*H*Lq*Lk*(d + dv)."""
    *batch, lq, d = q
    lk, dv = k[-2], v[-1]
    n = 1
    for s in batch:
        n *= s
    return 2 * n * lq * lk * (d + dv)


def _sdpa_backward_flops(grad_out, q, k, v, *args, **kwargs) -> int:
    """Backward: dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q (and P = Q K^T
    recomputed): 2*B*H*Lq*Lk*(2*d + 2*dv) + the forward q k^T = the same as torch's own
    ``sdpa_backward_flop_count``."""
    *batch, lq, d = q
    lk, dv = k[-2], v[-1]
    n = 1
    for s in batch:
        n *= s
    return 2 * n * lq * lk * (3 * d + 2 * dv)


def _native_mha_flops(query, key, value, embed_dim, num_head, *args, **kwargs) -> int:
    b, lq, e = query
    lk = key[1]
    proj = 2 * b * (lq + 2 * lk) * e * e + 2 * b * lq * e * e  # qkv + output projections
    return proj + 2 * b * lq * lk * 2 * e


_FORWARD = ('scaled_dot_product_attention', '_scaled_dot_product_flash_attention_for_cpu',
            '_scaled_dot_product_flash_attention', '_scaled_dot_product_efficient_attention',
            '_scaled_dot_product_cudnn_attention',
            '_scaled_dot_product_fused_attention_overrideable')
_BACKWARD = ('_scaled_dot_product_flash_attention_for_cpu_backward',
             '_scaled_dot_product_flash_attention_backward',
             '_scaled_dot_product_efficient_attention_backward',
             '_scaled_dot_product_cudnn_attention_backward',
             '_scaled_dot_product_fused_attention_overrideable_backward')
#: aten op name -> the kernel it stands for (what :func:`sdpa_kernels` reports)
SDPA_KERNEL_OPS = {
    '_scaled_dot_product_flash_attention_for_cpu': 'flash (CPU)',
    '_scaled_dot_product_flash_attention': 'flash',
    '_scaled_dot_product_efficient_attention': 'efficient',
    '_scaled_dot_product_cudnn_attention': 'cudnn',
    '_scaled_dot_product_fused_attention_overrideable': 'overrideable',
}


def _custom_mapping() -> dict:
    aten = torch.ops.aten
    custom = {}
    if hasattr(aten, '_native_multi_head_attention'):
        custom[aten._native_multi_head_attention] = _native_mha_flops
    for names, fn in ((_FORWARD, _sdpa_flops), (_BACKWARD, _sdpa_backward_flops)):
        for name in names:
            if hasattr(aten, name):
                custom[getattr(aten, name)] = fn
    return custom


def sdpa_macs(batch_heads: int, lq: int, lk: int, d: int, dv: int | None = None) -> int:
    """MACs of one attention forward: q k^T and attn v, ``batch_heads*lq*lk*(d+dv)``."""
    return batch_heads * lq * lk * (d + (d if dv is None else dv))


def count_macs(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(MACs, fn())``: multiply-accumulates of one call of ``fn`` (see module doc)."""
    with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter:
        out = fn()
    return counter.get_total_flops() / 2, out


# ------------------------------------------------------------------- SDPA kernels
class _SdpaCalls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.nn.functional.scaled_dot_product_attention:
            self.calls += 1
        return func(*args, **(kwargs or {}))


class _SdpaKernelOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.kernels: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = SDPA_KERNEL_OPS.get(func._overloadpacket.__name__)
        if name is not None:
            self.kernels[name] = self.kernels.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def sdpa_kernels(fn: Callable[[], Any]) -> dict[str, int]:
    """``{kernel: calls}`` of the SDPA kernels one call of ``fn`` ran, forward only
    (call it under ``torch.no_grad``). ``'math'`` counts the calls of
    ``F.scaled_dot_product_attention`` that reached no fused kernel (torch's math
    fallback decomposes into ``bmm`` + softmax)."""
    with _SdpaCalls() as calls, _SdpaKernelOps() as ops:
        fn()
    kernels = dict(ops.kernels)
    math = calls.calls - sum(kernels.values())
    if math > 0:
        kernels['math'] = math
    return kernels
