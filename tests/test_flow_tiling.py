"""Tiled flow inference (CroCo-Flow's baseline) against whole-frame inference."""
import math

import pytest
import torch

from mmwinwin.layers.flow.croco import CroCoFlowNet
from mmwinwin.layers.flow.tiling import tile_offsets, tile_weight, tiled_flow

TINY = dict(encoder=dict(arch=dict(embed_dims=32, num_layers=1, num_heads=2)),
            dec_embed_dims=32, dec_num_layers=1, dec_num_heads=2, head_hooks=(0, 1, 1, 1),
            head_features=16, head_layer_dims=(8, 16, 32, 32))


@pytest.mark.parametrize('total,tile,overlap', [(1080, 384, 0.5), (1920, 512, 0.5),
                                                (100, 100, 0.9), (97, 32, 0.0), (64, 48, 0.9)])
def test_tile_offsets_cover_evenly_with_the_overlap(total, tile, overlap):
    offs = tile_offsets(total, tile, overlap)
    assert offs[0] == 0 and offs[-1] == total - tile
    assert offs == sorted(set(offs))
    covered = torch.zeros(total, dtype=torch.bool)
    for o in offs:
        covered[o:o + tile] = True
    assert covered.all()
    steps = [b - a for a, b in zip(offs, offs[1:])]
    # neighbours share at least `overlap` of a tile (up to rounding), and no fewer tiles do it
    assert all(s <= (1 - overlap) * tile + 1 for s in steps)
    assert len(offs) == 1 + math.ceil((total - tile) / ((1 - overlap) * tile))


def test_tile_offsets_and_weight_errors():
    with pytest.raises(ValueError, match='overlap'):
        tile_offsets(100, 32, 1.0)
    with pytest.raises(ValueError, match='frame side'):
        tile_offsets(100, 128, 0.5)
    with pytest.raises(ValueError, match='tent'):
        tile_weight(4, 4, 'gauss')
    w = tile_weight(6, 8, 'tent')
    assert (w > 0).all() and w[2:4, 3:5].min() > w[0, 0]


@pytest.mark.parametrize('weight', ['uniform', 'tent'])
def test_tiling_a_pointwise_flow_reproduces_it(weight):
    """Any blending of tiles of a per-pixel function gives that function back: this checks
    the tile placement, the accumulation and the normalisation independently of a model."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 70, 90, generator=g), torch.randn(2, 3, 70, 90, generator=g)
    pointwise = lambda x, y: torch.stack([x[:, 0] - y[:, 1], x[:, 2] * y[:, 0]], 1)  # noqa: E731
    out = tiled_flow(pointwise, a, b, (32, 48), overlap=0.5, weight=weight)
    torch.testing.assert_close(out, pointwise(a, b))


def test_tiling_with_one_whole_frame_tile_equals_the_whole_pass():
    torch.manual_seed(0)
    net = CroCoFlowNet(**TINY).eval()
    a, b = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        whole = net(a, b)
        torch.testing.assert_close(tiled_flow(net, a, b, (64, 96)), whole)
        torch.testing.assert_close(tiled_flow(net, a, b, (128, 128)), whole)  # clipped
        tiles = tiled_flow(net, a, b, (32, 48), overlap=0.5)
    assert tiles.shape == whole.shape and not torch.allclose(tiles, whole)
    with pytest.raises(ValueError, match='expected'):
        tiled_flow(lambda x, y: x, a, b, (32, 48))


def test_estimator_tiled_test_mode():
    from mmwinwin.models.flow.estimator import WinWinFlowEstimator
    torch.manual_seed(0)
    whole = WinWinFlowEstimator(net=TINY).eval()
    tiled = WinWinFlowEstimator(net=TINY, test_cfg=dict(mode='tiled', tile_size=(32, 48),
                                                        overlap=0.5, weight='tent')).eval()
    tiled.load_state_dict(whole.state_dict())
    pair = torch.randn(1, 2, 3, 64, 96)
    with torch.no_grad():
        ref = tiled_flow(whole.net, pair[:, 0], pair[:, 1], (32, 48), 0.5, 'tent')
        torch.testing.assert_close(tiled(pair, mode='tensor'), ref)
        assert not torch.allclose(whole(pair, mode='tensor'), ref)
    for bad, match in ((dict(mode='slide'), 'whole'), (dict(mode='tiled'), 'tile_size'),
                       (dict(mode='tiled', tile_size=(30, 48)), 'multiples'),
                       (dict(mode='tiled', tile_size=(32, 48), overlap=1.5), 'overlap'),
                       (dict(mode='tiled', tile_size=(32, 48), weight='gauss'), 'weight')):
        with pytest.raises(ValueError, match=match):
            WinWinFlowEstimator(net=TINY, test_cfg=bad)
    with pytest.raises(KeyError, match='stride'):
        WinWinFlowEstimator(net=TINY, test_cfg=dict(mode='tiled', stride=8))


def test_benchmark_puts_windows_one_pass_and_tiles_side_by_side(tmp_path):
    import json

    from conftest import run_tool
    # the documented CPU command (--threads 2 --reps 1 --train-size 436 1024) at a tiny size
    out = run_tool(['tools/analysis_tools/benchmark_flow.py', '--arch', 'tiny', '--threads', '1',
                    '--reps', '1',
                    '--train-size', '64', '96', '--infer-size', '96', '160', '--windows', '2x2',
                    '--skip-full-train',
                    '--tile', '64', '96', '--json', str(tmp_path / 'b.json')])
    rows = json.loads((tmp_path / 'b.json').read_text())
    assert [r['what'] for r in rows] == [
        'train step, Win-Win 2x2x2',
        'inference, whole frame, one pass', 'inference, tiled 96x64 overlap 0.5 (6 tiles)']
    assert rows[0]['tokens'] == 8 and rows[0]['all_tokens'] == 24
    assert all(r['seconds'] > 0 for r in rows)
    assert 'one pass' in out and '| train step, Win-Win 2x2x2 |' in out
