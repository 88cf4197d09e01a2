"""The shared benchmark helpers (mmwinwin/utils/benchmark.py): MACs with fused attention
counted from the shapes, the same with the math kernel, timer and peak memory."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from conftest import REPO, WITHOUT_OPENMMLAB
from mmwinwin.layers import RoPEVisionTransformer
from mmwinwin.utils.benchmark import (count_macs, sdpa_kernels, time_fn)


def _qkv(b=2, h=3, lq=17, lk=13, d=8, dv=5, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(b, h, lq, d, generator=g, requires_grad=requires_grad)
    k = torch.randn(b, h, lk, d, generator=g, requires_grad=requires_grad)
    v = torch.randn(b, h, lk, dv, generator=g, requires_grad=requires_grad)
    return q, k, v


@pytest.mark.parametrize('dv', [8, 5])
def test_sdpa_macs_fused_equal_shapes_and_math(dv):
    q, k, v = _qkv(dv=dv)
    expected = 2 * 3 * 17 * 13 * 8 + 2 * 3 * 17 * 13 * dv  # q k^T + attn v
    # torch's CPU flash kernel needs equal head dims of v and q; otherwise math runs
    kernel = 'flash (CPU)' if dv == 8 else 'math'
    with torch.no_grad():
        fused, out = count_macs(lambda: F.scaled_dot_product_attention(q, k, v))
        assert sdpa_kernels(lambda: F.scaled_dot_product_attention(q, k, v)) == {kernel: 1}
        with sdpa_kernel(SDPBackend.MATH):
            math, out_math = count_macs(lambda: F.scaled_dot_product_attention(q, k, v))
            assert sdpa_kernels(lambda: F.scaled_dot_product_attention(q, k, v)) == {'math': 1}
    assert fused == expected
    assert math == expected
    torch.testing.assert_close(out, out_math)


def test_sdpa_backward_macs_from_shapes():
    q, k, v = _qkv(dv=8, requires_grad=True)
    b, h, lq, lk, d, dv = 2, 3, 17, 13, 8, 8
    out = F.scaled_dot_product_attention(q, k, v)
    macs, _ = count_macs(lambda: out.sum().backward())
    # flash backward recomputes q k^T, then dO V^T, P^T dO, dS K, dS^T Q
    assert macs == b * h * lq * lk * (3 * d + 2 * dv)


def test_vit_macs_equal_count_from_shapes_and_math_kernel():
    C, L, heads, mlp = 32, 2, 2, 4
    model = RoPEVisionTransformer(arch=dict(embed_dims=C, num_layers=L, num_heads=heads),
                                  patch_size=16).eval()
    img = torch.randn(2, 3, 64, 48)
    B, N = 2, (64 // 16) * (48 // 16)
    patch = B * N * C * 3 * 16 * 16
    per_block = (B * N * C * 3 * C          # qkv
                 + 2 * B * N * N * C         # q k^T and attn v, all heads (H * d = C)
                 + B * N * C * C             # output projection
                 + 2 * B * N * C * mlp * C)  # MLP
    expected = patch + L * per_block
    with torch.no_grad():
        fused, _ = count_macs(lambda: model(img))
        with sdpa_kernel(SDPBackend.MATH):
            math, _ = count_macs(lambda: model(img))
    assert fused == expected
    assert math == expected


def test_time_fn_warmup_and_repeats():
    calls = []
    t = time_fn(lambda: calls.append(1), 'cpu', warmup=2, repeats=5)
    assert len(calls) == 7
    assert len(t.times) == 5 and len(t.cpu_times) == 5
    assert t.min <= t.median <= max(t.times)
    with pytest.raises(ValueError, match='repeats'):
        time_fn(lambda: None, repeats=0)


def test_helper_imports_with_torch_alone_and_peak_memory_sees_a_large_temporary():
    """In a fresh process with torch alone (as on the GPU machine): the helpers import, and
    ``PeakMemory('cpu')`` sees a 64 MiB temporary. A fresh process, because in a long-lived
    one (a test session) the allocator may serve the tensor from pages freed earlier that are
    still resident, so the process's RSS need not grow at all."""
    code = WITHOUT_OPENMMLAB + '''
import torch
from mmwinwin.utils.benchmark import PeakMemory, count_macs  # noqa: F401
n = 64 * 2 ** 20  # 64 MiB of float32, written so that its pages are resident
with PeakMemory('cpu') as m:
    x = torch.ones(n // 4)
    del x
assert m.growth_bytes >= 0.9 * n, m.growth_bytes
assert m.peak_bytes >= m.growth_bytes
print('ok')
'''
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == 'ok'
