"""Expedite tools: MAC counting (incl. fused attention and clustering) and the cluster picture."""
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from mmwinwin.utils.benchmark import count_macs


def test_count_macs_linear_sdpa_and_mha():
    q = torch.randn(2, 3, 50, 8)
    macs, _ = count_macs(lambda: F.scaled_dot_product_attention(q, q, q))
    assert macs == 2 * 3 * 50 * 50 * (8 + 8)  # QK^T and AV
    mha = torch.nn.MultiheadAttention(24, 3, batch_first=True).eval()
    x = torch.randn(2, 10, 24)
    with torch.no_grad():
        macs, _ = count_macs(lambda: mha(x, x, x, need_weights=False))
    assert macs == 2 * 10 * 24 * 24 * 4 + 2 * 10 * 10 * 24 * 2
    lin = torch.nn.Linear(16, 4)
    macs, _ = count_macs(lambda: lin(torch.randn(5, 16)))
    assert macs == 5 * 16 * 4


def test_clustering_macs_linear_in_tokens():
    from mmwinwin.layers import cluster_tokens
    small, _ = count_macs(lambda: cluster_tokens(torch.randn(1, 20 * 20, 8), (20, 20), (14, 14)))
    large, _ = count_macs(lambda: cluster_tokens(torch.randn(1, 40 * 80, 8), (40, 80), (28, 56)))
    assert small > 0
    # MACs per token bounded (tiles at the border are relatively more wasteful on small grids)
    assert 0.5 < (large / 3200) / (small / 400) <= 1.0


def test_benchmark_settings_take_operator_options():
    import pytest

    import runpy
    tool = runpy.run_path(os.path.join(ROOT, 'tools', 'analysis_tools', 'benchmark_expedite.py'))
    label, parse_setting = tool['label'], tool['parse_setting']
    from mmwinwin.layers import ExpediteSettings
    base = ExpediteSettings(alpha=10, cluster_grid=(28, 28), temperature=0.02, k=20,
                            reconstruct='logits')
    s = parse_setting('8:20x20:reconstruction_topk=local', base)
    assert (s.alpha, s.cluster_grid, s.reconstruction_topk, s.candidate_window) == \
        (8, (20, 20), 'local', 'cut')
    assert (s.temperature, s.k, s.reconstruct) == (0.02, 20, 'logits')  # from the config
    assert label(s) == 'alpha=8, 20x20, reconstruction_topk=local'
    former = parse_setting('10:former', base)
    assert former.cluster_grid == (28, 28)
    assert (former.candidate_window, former.reconstruction_topk, former.empty_cluster,
            former.partition_padding, former.bias_resize) == \
        ('shifted', 'local', 'keep', 'replicate', 'bicubic-aligned')
    assert label(former) == 'alpha=10, 28x28, former local operators'
    assert label(parse_setting('10:s0.5', base)) == 'alpha=10, scale 0.5'
    with pytest.raises(ValueError, match="could not read.*'empty_cluster=drop'"):
        parse_setting('10:28x28:empty_cluster=drop', base)


def test_visualize_clusters_pixel_mode(tmp_path):
    rng = np.random.default_rng(0)
    img = np.zeros((96, 128, 3), np.uint8)
    img[:, :64] = (200, 30, 30)
    img[:, 64:] = (30, 30, 200)
    img = (img + rng.integers(0, 20, img.shape)).astype(np.uint8)
    path, out = str(tmp_path / 'img.png'), str(tmp_path / 'clusters.png')
    cv2.imwrite(path, img)
    from documented import run_in_process
    # the documented pixel-mode command (--grid 20 20) at a tiny size
    printed = run_in_process('python tools/analysis_tools/visualize_clusters.py',
                             [path, '--patch', '16', '--grid', '4', '6', '--out', out])
    pic = cv2.imread(out)
    assert pic.shape == (96, 128 * 2 + 8, 3)
    assert '6x8 tokens -> 4x6 clusters' in printed
    # the two colour halves never share a cluster: the painted map has both colours
    right = pic[:, 136:]
    assert right[:, :60, 0].mean() > 150 and right[:, -60:, 2].mean() > 150  # BGR on disk


def test_expedite_divergence_table():
    """The divergence tool at the Segmenter setting: official row zero, the candidate share
    of the shifted window equals a count by hand, the local top-k departs from official."""
    from mmwinwin.experiments import expedite_divergence
    text = expedite_divergence.main(['--only', 'Segmenter', '--seeds', '1', '--batch', '1',
                                     '--channels', '16'])
    rows = {line.split(' | ')[1]: line.split(' | ')[2:] for line in text.splitlines()
            if line.startswith('| Segmenter')}
    assert rows['official (defaults)'] == ['0 %', '0.00e+00', '0.00e+00', '0.0 % |']
    # 40 token rows -> 28 cells: rows 0-2 (cells 0, 1) and 38-39 (cells 26, 27) lie within
    # window // 2 = 2 cells of the border, on either axis
    near = 5 / 40
    assert rows["candidate_window='shifted'"][0] == f'{100 * (1 - (1 - near) ** 2):.1f} %'
    assert float(rows["reconstruction_topk='local'"][2]) > 0
    assert 'bicubic-aligned' in text


def test_expedite_accuracy_setting_syntax():
    import argparse

    import pytest
    from mmwinwin.experiments.expedite_accuracy import setting_dict
    args = argparse.Namespace(iters=5, window=5, temperature=1.0, k=20, placement='logits')
    d = setting_dict('3:11x11:t0.02:empty_cluster=keep', args)
    assert d['cluster_grid'] == (11, 11) and d['temperature'] == 0.02
    assert d['empty_cluster'] == 'keep' and 'candidate_window' not in d
    former = setting_dict('2:s0.7:former', args)
    assert former['cluster_scale'] == 0.7 and former['candidate_window'] == 'shifted'
    assert former['reconstruction_topk'] == 'local' and former['empty_cluster'] == 'keep'
    with pytest.raises(ValueError, match='empty_cluster=drop'):
        setting_dict('3:11x11:empty_cluster=drop', args)
    with pytest.raises(ValueError, match='formr'):
        setting_dict('3:11x11:formr', args)
