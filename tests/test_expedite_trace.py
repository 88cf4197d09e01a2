"""The expedited mmseg models (Segmenter, UPerNet-ViT, DPT, built from mmseg's own configs
at tiny sizes) run under ``torch.jit.trace`` and mmengine's ``FlopAnalyzer`` -- what
mmseg's ``tools/analysis_tools/get_flops.py`` does. Under tracing mmseg's patch embedding
hands the grid size on as 0-d tensors; the traced graph is specialised to the input size."""
import warnings

import pytest
import torch
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

from mmwinwin.layers import ExpediteSettings, cluster_sequence, resolve_cluster_grid
from test_expedite_mmseg import IMG, build_plain, dpt_cfg, expedited, segmenter_cfg, upernet_cfg



@pytest.fixture(autouse=True)
def _mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


CASES = [(segmenter_cfg, 3, 'logits'), (upernet_cfg, 4, 'backbone'), (dpt_cfg, 4, 'backbone')]


def test_tensor_grid_sizes_accepted():
    """The reported failure: ``token_grid`` given as ``(tensor(40), tensor(40))``."""
    grid = (torch.tensor(40), torch.tensor(40))
    assert resolve_cluster_grid(grid, cluster_grid=28) == (28, 28)
    s = ExpediteSettings(alpha=1, cluster_grid=(4, 4), window=3, k=4)
    x = torch.randn(1, 1 + 36, 8)
    out_t, _, res_t, _ = cluster_sequence(x, 1, (torch.tensor(6), torch.tensor(6)), s)
    out_i, _, res_i, _ = cluster_sequence(x, 1, (6, 6), s)
    assert res_t.token_grid == (6, 6) and type(res_t.token_grid[0]) is int
    assert torch.equal(out_t, out_i)
    with pytest.raises(ValueError, match='pair of ints'):
        resolve_cluster_grid((torch.tensor(4.0), torch.tensor(4.0)), cluster_grid=2)


@pytest.mark.parametrize('make_cfg,n_layers,placement', CASES)
def test_expedited_model_traces_and_counts_flops(make_cfg, n_layers, placement):
    cfg = make_cfg()
    plain = build_plain(cfg)
    exp = MODELS.build(expedited(cfg, alpha=1, cluster_grid=(2, 2), window=3, k=3,
                                 reconstruct=placement)).eval()
    exp.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(1, 3, IMG, IMG)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings: the trace is size-specialised
        eager = exp(x, mode='tensor')
        traced = torch.jit.trace(exp, x, check_trace=False)
        torch.testing.assert_close(traced(x), eager)
        if placement == 'logits':  # tensor mode follows the placement: the head ran on
            feats, weights = exp.backbone.forward_expedited(x, reconstruct=False)
            assert weights.cluster_grid == (2, 2)  # the 2x2 clusters, logits on 4x4 tokens
            assert eager.shape[2:] == (IMG // 16, IMG // 16)
        flops_exp = FlopAnalyzer(exp, x).total()
        flops_plain = FlopAnalyzer(plain, x).total()
        info = get_model_complexity_info(exp, inputs=x, show_table=False, show_arch=False)
    assert 0 < flops_exp < flops_plain  # layers after alpha=1 run on 4 clusters, not 16
    assert info['flops'] == flops_exp
