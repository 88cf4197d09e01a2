"""Win-Win's same-budget peers in the reproduction tools: random token dropping (selection
held against timm's ``PatchDropout``), 1 window, 4 smaller windows and a low-resolution whole
image, each built by ``build_cfg`` and run through the real mmseg training / test pipelines
on generated data."""
import pytest
import torch

from mmwinwin.experiments.reproduction import (VARIANTS, build_cfg, lowres_size,
                                               tokens_per_image, window_samples)
from mmwinwin.layers.winwin.windows import sample_random_tokens

PEERS = ('random_tokens', 'window1', 'windows4', 'lowres')


@pytest.mark.parametrize('grid,keep', [((12, 24), 72), ((4, 8), 8), ((45, 80), 968),
                                       ((5, 7), 1), ((6, 6), 36)])
@pytest.mark.parametrize('seed', [0, 3])
def test_random_tokens_follow_timm_patch_dropout(grid, keep, seed):
    """timm's rule, restated by running timm: with the same seed, PatchDropout (ordered, no
    prefix tokens) keeps exactly the tokens sample_random_tokens keeps."""
    timm_layers = pytest.importorskip('timm.layers')
    total = grid[0] * grid[1]
    prob = 1.0 - keep / total
    if max(1, int(total * (1.0 - prob))) != keep:  # timm's own rounding of the keep count
        prob = 1.0 - (keep + 0.5) / total
    drop = timm_layers.PatchDropout(prob, num_prefix_tokens=0, ordered=True).train()
    torch.manual_seed(seed)
    kept = drop(torch.arange(total, dtype=torch.float32).view(1, total, 1))[0, :, 0].long()
    assert kept.numel() == keep
    ours = sample_random_tokens(grid, keep, generator=torch.Generator().manual_seed(seed))
    assert ours.tolist() == kept.tolist()


def test_random_tokens_are_uniform_over_the_grid():
    """Every token is kept with probability keep / total (a chi-square-free check: 4000
    draws of 6 of 24 tokens, each token's count within 5 standard deviations of 1000)."""
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(24)
    for _ in range(4000):
        counts[sample_random_tokens((4, 6), 6, generator=g)] += 1
    sd = (4000 * 0.25 * 0.75) ** 0.5
    assert ((counts - 1000).abs() < 5 * sd).all()


def test_same_budget_of_every_peer():
    # 192x384, patch 16: 12x24 tokens; Win-Win's budget 2 windows of 6x6 = 72 tokens
    got = {v: tokens_per_image(v, (192, 384), 6, 144) for v in PEERS}
    assert got == dict(random_tokens='72', window1='64', windows4='64', lowres='72')
    assert window_samples('random_tokens', 6) == ('random_tokens', 2, 6)
    assert window_samples('window1', 6) == ('windows', 1, 8)  # the largest square <= 72
    assert window_samples('windows4', 6) == ('windows', 4, 4)  # 4 x 16 <= 72
    assert window_samples('fullres', 6) is None and window_samples('lowres', 6) is None
    assert lowres_size((192, 384), 6) == (96, 192)
    assert lowres_size((256, 512), 8) == (128, 256)
    assert set(PEERS) <= set(VARIANTS)
    # at patch 8 the same 96x96-pixel windows are 12x12 tokens: the budget (288 of 24x48
    # tokens) is again the half-size image, in the pipeline and the data preprocessor alike
    cfg = build_cfg('lowres', 'D', 'W', (192, 384), 12, 144, 2400, 4, patch_size=8)
    resize = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'Resize')
    assert tuple(resize['scale']) == (192, 96)
    assert tuple(cfg.model.data_preprocessor.size) == (96, 192)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmwinwin.datasets.synthetic import generate_ade20k
    return generate_ade20k(str(tmp_path_factory.mktemp('peers')), num_train=2, num_val=1,
                           img_size=(192, 384), num_scenes=2, seed=0)


def _dataset(cfg, split):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    loader = cfg.train_dataloader if split == 'train' else cfg.test_dataloader
    return DATASETS.build(loader.dataset)


@pytest.mark.parametrize('variant', PEERS)
def test_peer_training_samples_through_the_real_pipeline(data, tmp_path, variant):
    import mmwinwin  # noqa: F401  (registers the transforms)
    cfg = build_cfg(variant, data, str(tmp_path), (192, 384), 6, 144, 12, 2, num_scenes=2)
    sample = _dataset(cfg, 'train')[0]
    meta = sample['data_samples'].metainfo
    img_hw = tuple(sample['inputs'].shape[-2:])
    if variant == 'lowres':
        assert cfg.model.type == 'EncoderDecoder' and cfg.model.data_preprocessor.size == (96, 192)
        assert img_hw == (96, 192)
        assert tuple(sample['data_samples'].gt_sem_seg.data.shape[-2:]) == (96, 192)
        test = _dataset(cfg, 'test')[0]  # test on the low-res image, labels at full size
        assert tuple(test['inputs'].shape[-2:]) == (96, 192)
        assert tuple(test['data_samples'].gt_sem_seg.data.shape[-2:]) == (192, 384)
        return
    assert cfg.model.type == 'WinWinEncoderDecoder' and img_hw == (192, 384)
    assert meta['winwin_grid'] == (12, 24) and meta['winwin_patch_size'] == 16
    if variant == 'random_tokens':
        idx = meta['winwin_token_index']
        assert len(idx) == len(set(idx)) == 72 and 0 <= min(idx) and max(idx) < 288
        assert 'winwin_windows' not in meta
    else:
        wins = meta['winwin_windows']
        side = 8 if variant == 'window1' else 4
        assert [tuple(w[2:]) for w in wins] == [(side, side)] * (1 if variant == 'window1' else 4)
        assert sum(h * w for *_, h, w in wins) == int(tokens_per_image(variant, (192, 384), 6,
                                                                          144))
