"""The cheap code paths of Expedite's plug-in entry keep their results.

* ``check_finite_tokens`` tests one fp32-accumulated sum and looks at the elements only
  when that sum is not finite: finite tokens whose sum overflows (fp32 values near the
  limit, or fp16 tokens whose fp16 sum would overflow) must pass, and every NaN / inf
  must still be found and counted.
* the initial centres pool a channels-last view of the patch tokens, which after the
  cls token are a non-contiguous slice of the sequence: they must equal adaptive
  average pooling written out here from its definition (bin ``i`` of ``n`` over ``L``
  covers ``floor(i L / n) .. ceil((i + 1) L / n) - 1``), positions included.
"""
import math

import pytest
import torch

from mmwinwin.layers import ExpediteSettings, cluster_sequence
from mmwinwin.layers.expedite.plugin import check_finite_tokens


def test_finite_tokens_whose_sum_overflows_pass():
    big = torch.full((1, 6, 4), 3e38)                     # finite; the fp32 sum is inf
    assert math.isinf(big.sum().item())
    check_finite_tokens(big)
    mixed = torch.cat([big, -big], 1)                     # inf - inf would be NaN
    check_finite_tokens(mixed)
    half = torch.full((2, 64, 32), 6e4, dtype=torch.float16)  # fp16 sum overflows
    assert math.isinf(half.sum().item())
    check_finite_tokens(half)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
def test_non_finite_tokens_are_counted(dtype):
    x = torch.randn(2, 30, 8).to(dtype)
    x[0, 3, 1] = float('nan')
    x[1, 7, 0] = float('inf')
    x[1, 8, 5] = float('-inf')
    with pytest.raises(ValueError, match=r'3 non-finite values \(NaN or inf\) of 480'):
        check_finite_tokens(x)
    y = torch.full((1, 4, 2), 3e38)
    y[0, 0, 0] = float('inf')                             # overflowing sum and a real inf
    with pytest.raises(ValueError, match='1 non-finite'):
        check_finite_tokens(y)


def _pool_by_definition(v, H, W, h, w):
    """(B, H*W, D) -> (B, h*w, D), float64, bins from the adaptive-pooling definition."""
    v = v.double().reshape(v.shape[0], H, W, -1)
    rows = []
    for i in range(h):
        y0, y1 = (i * H) // h, -((-(i + 1) * H) // h)
        for j in range(w):
            x0, x1 = (j * W) // w, -((-(j + 1) * W) // w)
            rows.append(v[:, y0:y1, x0:x1].mean((1, 2)))
    return torch.stack(rows, 1)


@pytest.mark.parametrize('grids', [((7, 9), (3, 4)), ((8, 8), (5, 5)), ((6, 10), (6, 3))])
@pytest.mark.parametrize('prefix', [0, 1, 2])
def test_initial_centres_equal_pooling_of_the_patch_slice(grids, prefix):
    (H, W), (h, w) = grids
    torch.manual_seed(0)
    x = torch.randn(3, prefix + H * W, 16)
    pos = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij'),
                      -1).reshape(-1, 2).float()
    settings = ExpediteSettings(alpha=1, cluster_grid=(h, w), iters=0, k=1)
    seq, cpos, res, _ = cluster_sequence(x, prefix, (H, W), settings, pos=pos)
    want = _pool_by_definition(x[:, prefix:], H, W, h, w)
    torch.testing.assert_close(res.centers.double(), want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(seq[:, :prefix], x[:, :prefix], rtol=0, atol=0)
    want_pos = _pool_by_definition(pos.expand(3, -1, -1), H, W, h, w)
    torch.testing.assert_close(cpos.double(), want_pos, rtol=1e-6, atol=1e-6)
