"""Binocular flow model, Win-Win pairing policy, data preprocessor, estimator (CPU, tiny)."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmwinwin.layers.flow.croco import CroCoFlowNet
from mmwinwin.layers.flow.ops import backward_warp, flow_error_stats, masked_epe_loss
from mmwinwin.layers.winwin.pair_windows import crop_pair_windows, pair_window_tokens
from mmwinwin.models.flow import FlowDataPreprocessor, WinWinFlowEstimator

TINY = dict(encoder=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)),
            dec_embed_dims=32, dec_num_layers=2, dec_num_heads=2, dec_mlp_ratio=2.0,
            head_hooks=(0, 1, 2, 2), head_features=16, head_layer_dims=(8, 16, 32, 32))


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return CroCoFlowNet(**TINY).eval()


def test_full_resolution_shapes(net):
    a, b = torch.randn(2, 3, 70, 100), torch.randn(2, 3, 70, 100)
    with torch.no_grad():
        assert net(a, b).shape == (2, 2, 70, 100)
    with pytest.raises(ValueError, match='same shape'):
        net(a, b[..., :90])


@pytest.mark.parametrize('margin', [0, 2])
def test_one_window_covering_the_frame_equals_full_pass(net, margin):
    """Windows are the same network on fewer tokens: a window that covers the whole
    (square) token grid must reproduce the full-resolution output exactly."""
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full = net(a, b)
        win = net.forward_windows(a, b, [[(0, 0, 4, 4)]], margin=margin)
    assert win.shape == (1, 2, 64, 64)
    torch.testing.assert_close(win, full, atol=1e-4, rtol=1e-4)


def test_window_tokens_attend_only_to_paired_frame2_tokens(net):
    torch.manual_seed(1)
    a, b = torch.randn(1, 3, 96, 128), torch.randn(1, 3, 96, 128)
    wins = [[(1, 1, 2, 2), (3, 5, 2, 2)]]  # 6x8 token grid
    with torch.no_grad():
        ref = net.forward_windows(a, b, wins)
        far = b.clone()
        far[..., 0:16, 112:128] += 5  # token (0, 7): outside windows and their 1-token margin
        assert torch.equal(net.forward_windows(a, far, wins), ref)
        ring = b.clone()
        ring[..., 0:16, 0:16] += 5  # token (0, 0): in the 1-token margin of window 1 only
        assert torch.equal(net.forward_windows(a, ring, wins), ref)
        assert not torch.allclose(net.forward_windows(a, ring, wins, margin=1),
                                  net.forward_windows(a, b, wins, margin=1))
        inside = b.clone()
        inside[..., 16:32, 16:32] += 5  # token (1, 1): inside window 1
        assert not torch.allclose(net.forward_windows(a, inside, wins), ref)


def test_pairing_policy_indices():
    wins = [[(0, 0, 2, 2), (3, 3, 2, 2)], [(1, 4, 2, 2), (4, 0, 2, 2)]]
    grid = (6, 7)
    i1, i2, m = pair_window_tokens(wins, grid, margin=0)
    assert m is None and torch.equal(i1, i2)
    assert i1[0].tolist() == [0, 1, 7, 8, 24, 25, 31, 32]
    i1, i2, m = pair_window_tokens(wins, grid, margin=1)
    for b in range(2):  # independent union of enlarged, clipped windows
        want = set()
        for t, l, h, w in wins[b]:
            for y in range(max(0, t - 1), min(6, t + h + 1)):
                for x in range(max(0, l - 1), min(7, l + w + 1)):
                    want.add(y * 7 + x)
        got = i2[b][m[b]].tolist() if m is not None else i2[b].tolist()
        assert got == sorted(want)
    assert m is not None and m.sum(1).tolist() == [24, 25]
    with pytest.raises(ValueError, match='margin'):
        pair_window_tokens(wins, grid, margin=-1)
    with pytest.raises(ValueError, match='same number'):
        pair_window_tokens([[(0, 0, 2, 2)], [(0, 0, 3, 3)]], grid)
    with pytest.raises(ValueError, match='outside'):
        pair_window_tokens([[(5, 0, 2, 2)]], grid)


def test_crop_pair_windows_matches_slicing():
    x = torch.arange(2 * 2 * 64 * 80, dtype=torch.float32).reshape(2, 2, 64, 80)
    wins = [[(0, 1, 2, 2), (2, 3, 2, 2)], [(1, 0, 2, 2), (0, 2, 2, 2)]]
    out = crop_pair_windows(x, wins, 16)
    assert out.shape == (4, 2, 32, 32)
    torch.testing.assert_close(out[1], x[0, :, 32:64, 48:80])
    torch.testing.assert_close(out[3], x[1, :, 0:32, 32:64])


def test_flow_ops_against_hand_computation():
    img = torch.arange(20.).reshape(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # everything moved one pixel right
    warped, inside = backward_warp(img, flow)
    torch.testing.assert_close(warped[0, 0, :, :4], img[0, 0, :, 1:])
    assert inside[0, :, :4].all() and not inside[0, :, 4].any()
    gt = torch.zeros(1, 2, 1, 3)
    pred = torch.tensor([[[[0.5, 3.0, 4.0]], [[0.0, 0.0, 3.0]]]])
    st = flow_error_stats(pred, gt, torch.tensor([[[True, True, False]]]))
    assert st['count'] == 2 and st['epe'] == pytest.approx(3.5) and st['out1px'] == 1
    valid = torch.tensor([[[True, False, False]]])
    assert masked_epe_loss(pred, gt, valid).item() == pytest.approx(0.5, abs=1e-3)


def _batch(B=2, H=64, W=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 255, (2, 3, H, W), generator=g, dtype=torch.uint8)
              for _ in range(B)]
    samples = []
    for _ in range(B):
        s = BaseDataElement(metainfo=dict(img_shape=(H, W), ori_shape=(H, W)))
        s.gt_flow = torch.randn(2, H, W, generator=g) * 3
        s.gt_valid = torch.ones(H, W, dtype=torch.bool)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_data_preprocessor_normalises_and_pads():
    pre = FlowDataPreprocessor(mean=(10, 20, 30), std=(2, 4, 5), size_divisor=16)
    d = _batch(1, 30, 40)
    x = d['inputs'][0].float()
    out = pre(d)
    assert out['inputs'].shape == (1, 2, 3, 32, 48)
    mean, std = torch.tensor([10., 20, 30]), torch.tensor([2., 4, 5])
    want = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(out['inputs'][0, :, :, :30, :40], want)
    assert (out['inputs'][0, :, :, 30:] == 0).all()
    assert out['data_samples'][0].pad_shape == (32, 48)
    with pytest.raises(ValueError, match=r'\(2, 3, H, W\)'):
        pre(dict(inputs=[torch.zeros(3, 30, 40, dtype=torch.uint8)], data_samples=None))


def test_estimator_loss_only_inside_windows_and_predict():
    """The windows come from the samples' metainfo (the pipeline's WinWinWindows, packed by
    PackFlowInputs); the loss sees the target inside them only."""
    torch.manual_seed(0)
    model = WinWinFlowEstimator(net=TINY, windows=dict(margin=0))
    data = model.data_preprocessor(_batch(), training=True)
    wins = [[(0, 0, 2, 2), (2, 3, 2, 2)], [(1, 1, 2, 2), (0, 4, 2, 2)]]  # 4x6 token grid
    for s, w in zip(data['data_samples'], wins):
        s.set_metainfo(dict(winwin_windows=w, winwin_grid=(4, 6), winwin_patch_size=16))
    assert model.batch_windows(data['data_samples']) == wins
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_flow', 'train_epe'}
    losses['loss_flow'].backward()
    assert model.net.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    # changing the target outside the windows leaves the loss unchanged; inside changes it
    outside = torch.ones(2, 64, 96, dtype=torch.bool)
    for b, ws in enumerate(wins):
        for t, l, h, w in ws:
            outside[b, t * 16:(t + h) * 16, l * 16:(l + w) * 16] = False
    for b, s in enumerate(data['data_samples']):
        s.gt_flow = torch.where(outside[b], torch.full_like(s.gt_flow, 1e3), s.gt_flow)
    assert model(**data, mode='loss')['loss_flow'].item() == pytest.approx(
        losses['loss_flow'].item(), rel=1e-5)
    data['data_samples'][0].gt_flow[:, 0, 0] += 50.0  # inside window (0, 0)
    assert model(**data, mode='loss')['loss_flow'].item() != pytest.approx(
        losses['loss_flow'].item(), rel=1e-5)
    # predict: whole frames, one pass, cropped to the unpadded size
    model.eval()
    d = model.data_preprocessor(_batch(1, 40, 50))
    with torch.no_grad():
        out = model(**d, mode='predict')
    assert out[0].pred_flow.shape == (2, 40, 50)


def test_estimator_windows_from_the_pipeline(tmp_path):
    """The real pipeline: WinWinWindows on a loaded pair (frame 1's size), PackFlowInputs
    carries the windows and the model trains on exactly those."""
    from mmwinwin.datasets.synthetic.flow import write_sintel_layout
    from mmwinwin.registry import TRANSFORMS
    write_sintel_layout(str(tmp_path / 'train'), 1, size=(64, 96), seed=0)
    from mmwinwin.datasets.flow import SintelFlowDataset
    pipe = [dict(type='LoadFlowPair'), dict(type='WinWinWindows', num_windows=2,
                                             window_size=2, patch_size=16, seed=3),
            dict(type='PackFlowInputs')]
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmwinwin'):
        ds = SintelFlowDataset(data_root=str(tmp_path / 'train'), split='training',
                               passes='clean', pipeline=pipe)
    item = ds[0]
    meta = item['data_samples'].metainfo
    assert tuple(meta['winwin_grid']) == (4, 6) and meta['winwin_patch_size'] == 16
    ref = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=2,
                                patch_size=16, seed=3))
    assert meta['winwin_windows'] == ref(dict(img=np.zeros((64, 96, 3), np.uint8)))[
        'winwin_windows']
    model = WinWinFlowEstimator(net=TINY, windows=dict(margin=1))
    data = model.data_preprocessor(dict(inputs=[item['inputs']],
                                        data_samples=[item['data_samples']]), training=True)
    assert model(**data, mode='loss')['loss_flow'].requires_grad


def test_estimator_full_resolution_baseline_and_bad_config():
    model = WinWinFlowEstimator(net=TINY, windows=None)
    data = model.data_preprocessor(_batch(1), training=True)
    assert model(**data, mode='loss')['loss_flow'].requires_grad
    with pytest.raises(KeyError, match="windows: unknown key 'overlap'"):
        WinWinFlowEstimator(net=TINY, windows=dict(overlap=True))
    with pytest.raises(ValueError, match=r"moved to the pipeline.*WinWinWindows', "
                                         r'num_windows=2, window_size=2.*margin=0'):
        WinWinFlowEstimator(net=TINY, windows=dict(num_windows=2, window_size=2))
    with pytest.raises(ValueError, match='margin must be an int >= 0'):
        WinWinFlowEstimator(net=TINY, windows=dict(margin=-1))
    win = WinWinFlowEstimator(net=TINY, windows=dict(margin=0))
    data = win.data_preprocessor(_batch(2), training=True)
    with pytest.raises(KeyError, match="WinWinWindows.*PackFlowInputs"):
        win(**data, mode='loss')
    data['data_samples'][0].set_metainfo(dict(winwin_windows=[(0, 0, 2, 2)]))
    data['data_samples'][1].set_metainfo(dict(winwin_windows=[(0, 0, 3, 3)]))
    with pytest.raises(ValueError, match='same window sizes.*fixed window_size'):
        win(**data, mode='loss')
    with pytest.raises(ValueError, match='RoPE'):
        CroCoFlowNet(**{**TINY, 'encoder': dict(TINY['encoder'], use_rope=False)})


def test_predict_undoes_test_time_resize():
    torch.manual_seed(0)
    model = WinWinFlowEstimator(net=TINY).eval()
    d = model.data_preprocessor(_batch(1, 32, 48))
    s = d['data_samples'][0]
    s.set_metainfo(dict(ori_shape=(64, 72), scale_factor=(48 / 72, 0.5)))
    with torch.no_grad():
        raw = model(d['inputs'], mode='tensor')[0]
        out = model(**d, mode='predict')[0].pred_flow
    assert out.shape == (2, 64, 72)
    want = torch.nn.functional.interpolate(raw[None], size=(64, 72), mode='bilinear',
                                           align_corners=False)[0]
    torch.testing.assert_close(out[0], want[0] * 72 / 48)
    torch.testing.assert_close(out[1], want[1] * 2.0)


def test_configs_match_their_names_and_windows_fit():
    import glob
    import os.path as osp
    import re

    from mmengine.config import Config

    from mmwinwin.layers.winwin.windows import sample_grid_size, windows_fit
    frames = {'spring-1920x1080': (1080, 1920), 'sintel-1024x436': (436, 1024),
              'synthetic-flow-128x192': (128, 192)}
    cfg_dir = osp.join(osp.dirname(__file__), '..', 'configs', 'winwin_flow')
    files = sorted(glob.glob(osp.join(cfg_dir, '*.py')))
    assert any(osp.basename(f).startswith('winwin-') for f in files)
    assert any(osp.basename(f).startswith('fullres_') for f in files)
    files += sorted(glob.glob(osp.join(cfg_dir, 'experiments', '*.py')))
    for f in files:
        name = osp.basename(f)
        cfg = Config.fromfile(f)
        assert cfg.default_scope == 'mmwinwin' and cfg.model.type == 'WinWinFlowEstimator'
        m = re.match(r'winwin-(\d+)x(\d+)(-margin(\d+))?_', name)
        if name.startswith('fullres'):
            assert cfg.model.windows is None
            continue
        n, s = int(m.group(1)), int(m.group(2))
        pipe = cfg.train_dataloader.dataset.pipeline
        windows = [t for t in pipe if t['type'] == 'WinWinWindows']
        assert len(windows) == 1 and pipe[-1]['type'] == 'PackFlowInputs', name
        assert (windows[0].num_windows, windows[0].window_size) == (n, s), name
        assert cfg.model.windows.margin == int(m.group(4) or cfg.model.windows.margin)
        size = next(v for k, v in frames.items() if k in name)
        assert windows_fit(sample_grid_size(size, 16), n, s), name


def test_cross_attention_offset_readout_is_expected_key_displacement():
    """The readout gives, per head, sum_j softmax(q.k)_j * (pos_y_j - pos_x): checked
    against attention probabilities computed by hand (RoPE applied, padded keys masked)."""
    from mmwinwin.layers.flow.croco import CrossAttention
    from mmwinwin.layers.vit.rope import RoPE2D
    torch.manual_seed(0)
    dim, heads = 16, 2
    ca = CrossAttention(dim, heads, rope=RoPE2D(dim // heads), offset_readout=True)
    with torch.no_grad():
        ca.proj.weight.zero_()
        ca.proj.bias.zero_()
        ca.offset_proj.weight.zero_()
        ca.offset_proj.weight[:2 * heads].copy_(torch.eye(2 * heads))
        ca.offset_proj.bias.zero_()
    B, N, M = 2, 5, 7
    x, y = torch.randn(B, N, dim), torch.randn(B, M, dim)
    pos_x, pos_y = torch.rand(B, N, 2) * 6, torch.rand(B, M, 2) * 6
    mask = torch.ones(B, M, dtype=torch.bool)
    mask[1, -2:] = False
    with torch.no_grad():
        out = ca(x, y, pos_x, pos_y, mask)[..., :2 * heads].reshape(B, N, heads, 2)
        q = ca.rope(ca.q(x).reshape(B, N, heads, -1).transpose(1, 2), pos_x)
        k = ca.kv(y)[..., :dim].reshape(B, M, heads, -1).transpose(1, 2)
        k = ca.rope(k, pos_y)
        logits = q @ k.transpose(-1, -2) / (dim // heads) ** 0.5
        logits = logits.masked_fill(~mask[:, None, None], float('-inf'))
        p = logits.softmax(-1)  # (B, heads, N, M)
        ref = torch.einsum('bhnm,bmc->bnhc', p, pos_y) - pos_x[:, :, None]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('margin', [0, 2])
def test_offset_readout_windows_equal_full_pass_and_matching_init(margin):
    torch.manual_seed(0)
    net = CroCoFlowNet(**TINY, dec_offset_readout=True).eval()
    for blk in net.dec_blocks:  # matching init: q and k projections start equal
        d = blk.cross_attn.q.weight.shape[0]
        assert torch.equal(blk.cross_attn.q.weight, blk.cross_attn.kv.weight[:d])
        assert blk.cross_attn.q.weight.std() > 0.2  # not the 0.02 init (uniform attention)
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full = net(a, b)
        win = net.forward_windows(a, b, [[(0, 0, 4, 4)]], margin=margin)
    torch.testing.assert_close(win, full, atol=1e-4, rtol=1e-4)
