"""Expedite per attention partition (pure core, ``mmwinwin.layers.expedite.partitioned``):
each window of a ``(B, H, W, C)`` grid is padded, clustered on its own and rebuilt; checked
against windows cut and padded by hand in the test."""
import pytest
import torch

from mmwinwin.layers import ExpediteSettings, cluster_partitions, reconstruct_partitions


def test_cluster_windows_shapes_and_padding():
    torch.manual_seed(0)
    s = ExpediteSettings(alpha=1, num_clusters=4, window=3, temperature=0.05, k=3)
    x = torch.randn(2, 7, 10, 8)  # 7x10 is not a multiple of the window 4
    c = cluster_partitions(x, 4, s)
    assert c.padded_hw == (8, 12) and c.cluster_grid == (2, 2)
    assert c.centers.shape == (2 * 2 * 3, 4, 8)
    out = reconstruct_partitions(c.centers, c)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_cluster_windows_padding_zeros_or_replicate():
    """Official: windows padded with zero tokens; 'replicate' copies the edge tokens. An
    independent padding by hand, clustered window by window with the core call."""
    from mmwinwin.layers import cluster_tokens
    torch.manual_seed(0)
    x = torch.randn(1, 6, 5, 8)  # window 4: padded to 8x8
    for mode in ('zeros', 'replicate'):
        s = ExpediteSettings(alpha=1, num_clusters=4, window=3, temperature=0.05, k=3,
                             partition_padding=mode)
        c = cluster_partitions(x, 4, s)
        if mode == 'zeros':
            padded = torch.zeros(1, 8, 8, 8)
            padded[:, :6, :5] = x
        else:
            rows = torch.tensor([min(i, 5) for i in range(8)])
            cols = torch.tensor([min(j, 4) for j in range(8)])
            padded = x[:, rows][:, :, cols]
        wins = torch.stack([padded[0, i:i + 4, j:j + 4].reshape(16, 8)
                            for i in (0, 4) for j in (0, 4)])
        ref = cluster_tokens(wins, (4, 4), cluster_grid=(2, 2), iters=s.iters, window=3,
                             temperature=0.05)
        torch.testing.assert_close(c.centers, ref.centers)
    with pytest.raises(ValueError, match='partition_padding'):
        ExpediteSettings(alpha=1, num_clusters=4, window=3, k=3, partition_padding='reflect')


def test_cluster_windows_is_per_window():
    """A window's clusters depend on its own tokens only."""
    torch.manual_seed(0)
    s = ExpediteSettings(alpha=1, num_clusters=4, window=3, temperature=0.05, k=3)
    x = torch.randn(1, 8, 8, 8)
    y = x.clone()
    y[:, :4, 4:] += 5.0  # change window (0, 1) only
    a, b = cluster_partitions(x, 4, s).centers, cluster_partitions(y, 4, s).centers
    changed = [(a[i] - b[i]).abs().max().item() > 1e-4 for i in range(4)]
    assert changed == [False, True, False, False]


