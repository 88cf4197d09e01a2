"""Win-Win's full-image phase: windows before ``begin``, the host's whole-image loss from it.

The whole-image loss is checked against the host model itself (mmseg's ``EncoderDecoder`` /
``DepthEstimator`` with the same weights, or the flow network's whole-pair forward and the
EPE loss), the window phase by its defining property (nothing outside the windows changes
the loss), and the hook through a real mmengine Runner, with ``--resume``, and through
``tools/train.py``.
"""
import copy
import os.path as osp
import runpy
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.structures import BaseDataElement, PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmwinwin  # noqa: F401
from mmwinwin.datasets.synthetic import generate_ade20k
from mmwinwin.layers.flow.ops import masked_epe_loss
from mmwinwin.layers.settings import UnknownSettingError
from mmwinwin.models.flow import WinWinFlowEstimator
from mmwinwin.models.winwin.full_image_phase import (check_full_image_phase,
                                                   full_image_phase_begin)
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'winwin')
SEG_CFG = osp.join(CFG, 'winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py')
P = 8
WINS = [[(0, 0, 2, 2), (2, 3, 2, 2)], [(1, 1, 2, 2), (0, 4, 2, 2)]]


def _seg_cfg(type_, **extra):
    return ConfigDict(
        type=type_, **extra,
        backbone=dict(type='RoPEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                      patch_size=P, out_indices=(1,)),
        decode_head=dict(type='FCNHead', in_channels=32, in_index=-1, channels=16, num_convs=1,
                         num_classes=5, norm_cfg=None, dropout_ratio=0.0,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def _seg_batch(H=32, W=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(2, 3, H, W, generator=g)
    samples = []
    for b in range(2):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                            winwin_windows=WINS[b], winwin_patch_size=P))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, H, W), generator=g))
        samples.append(s)
    return img, samples


def _outside_windows(H, W):
    """(2, H, W) True on the pixels outside each sample's windows."""
    out = torch.ones(2, H, W, dtype=torch.bool)
    for b, wins in enumerate(WINS):
        for t, l, h, w in wins:
            out[b, t * P:(t + h) * P, l * P:(l + w) * P] = False
    return out


def _change_outside(img, samples, key='gt_sem_seg', fill=4):
    """The same batch with new pixels and labels outside the windows."""
    out = _outside_windows(*img.shape[-2:])
    img2 = torch.where(out[:, None], torch.randn_like(img) * 3, img)
    new = copy.deepcopy(samples)
    for b, s in enumerate(new):
        data = getattr(s, key).data
        s.set_data({key: PixelData(data=torch.where(out[b][None], torch.full_like(data, fill),
                                                    data))})
    return img2, new


def test_segmentation_windows_before_begin_host_loss_from_begin():
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=3)))
    host = MODELS.build(_seg_cfg('EncoderDecoder'))
    host.load_state_dict(model.state_dict())
    img, samples = _seg_batch()
    img2, samples2 = _change_outside(img, samples)

    model.set_train_progress(2, 10)  # iteration 2 < begin: windows only
    assert not model.in_full_image_phase()
    win = model.loss(img, samples)['decode.loss_ce']
    torch.testing.assert_close(model.loss(img2, samples2)['decode.loss_ce'], win)
    whole = host.loss(img, samples)['decode.loss_ce']
    assert abs(win.item() - whole.item()) > 1e-3

    model.set_train_progress(3, 10)  # from begin on: the host's whole-image loss
    assert model.in_full_image_phase()
    torch.testing.assert_close(model.loss(img, samples)['decode.loss_ce'], whole)
    torch.testing.assert_close(model.loss(img2, samples2)['decode.loss_ce'],
                               host.loss(img2, samples2)['decode.loss_ce'])
    loss = model.loss(img, samples)['decode.loss_ce']
    loss.backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_interleaved_whole_images_every_nth_iteration():
    """full_image_phase=dict(every=3): iterations 2, 5, 8, ... are the host's whole-image
    loss, the others windows only."""
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(every=3)))
    host = MODELS.build(_seg_cfg('EncoderDecoder'))
    host.load_state_dict(model.state_dict())
    img, samples = _seg_batch()
    whole = host.loss(img, samples)['decode.loss_ce']
    got = []
    for it in range(9):
        model.set_train_progress(it, 9)
        got.append(model.in_full_image_phase())
        if it in (1, 2):
            loss = model.loss(img, samples)['decode.loss_ce']
            assert (abs(loss.item() - whole.item()) < 1e-6) == (it == 2)
    assert [i for i, g in enumerate(got) if g] == [2, 5, 8]


def test_segmentation_with_context_tokens_whole_phase_is_the_inference_forward():
    """With context tokens the whole-image phase trains the forward that inference runs:
    the whole image plus its pooled context tokens."""
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', context_tokens=dict(pool=2),
                                  full_image_phase=dict(begin=0)))
    img, samples = _seg_batch()
    model.set_train_progress(0, 4)
    want = model.decode_head.loss_by_feat(model.decode_head(model.extract_feat(img)), samples)
    torch.testing.assert_close(model.loss(img, samples)['decode.loss_ce'], want['loss_ce'])


def _spy_forward_tokens(backbone):
    """Record what the real ``forward_tokens`` is called with (it still runs)."""
    calls, real = [], backbone.forward_tokens

    def spy(tokens, pos, grid_size=None, **kw):
        calls.append((tokens.shape[1], pos.detach().clone(), grid_size, kw))
        return real(tokens, pos, grid_size, **kw)
    backbone.forward_tokens = spy
    return calls


@pytest.mark.parametrize('rope_type', ['axial', 'dinov3'])
def test_resized_phase_tokens_sit_at_the_full_images_coordinates(rope_type):
    """full_image_phase.scale=0.5: the backbone gets the whole image resized to half its size
    (a quarter of the tokens), each token at the centre of the 2 x 2 full-image tokens it
    covers (their mean position), with the full image's grid as the RoPE grid; the loss is
    the decode head's against the labels resized with the image."""
    torch.manual_seed(0)
    cfg = _seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=0, scale=0.5))
    cfg.backbone.rope_type = rope_type
    model = MODELS.build(cfg)
    img, samples = _seg_batch()  # 32 x 48 px: a 4 x 6 token grid, 2 x 3 at half size
    model.set_train_progress(0, 4)
    calls = _spy_forward_tokens(model.backbone)
    loss = model.loss(img, samples)['decode.loss_ce']
    (n, pos, grid, kw), = calls
    assert n == 6 and tuple(grid) == (4, 6) and kw['window_shapes'] == [(2, 3)]
    full = torch.stack(torch.meshgrid(torch.arange(4.), torch.arange(6.), indexing='ij'), 0)
    want = F.avg_pool2d(full[None], 2)[0].flatten(1).T  # each 2 x 2 cell's mean (y, x)
    torch.testing.assert_close(pos.reshape(-1, 2), want)

    # the loss by hand: resized image, patch embedding, those positions, head vs full labels
    small = F.interpolate(img, size=(16, 24), mode='bilinear', align_corners=False,
                          antialias=True)
    tokens, _ = model.backbone.patch_embed(small)
    out = model.backbone.forward_tokens(tokens, want, (4, 6), window_shapes=[(2, 3)])[-1]
    feats = [out.transpose(1, 2).reshape(2, -1, 2, 3)]
    # the labels resized with the image: the label at each half-size pixel's centre, (2i+1, 2j+1)
    labels = torch.stack([s.gt_sem_seg.data[0, 1::2, 1::2] for s in samples])
    seg = model.decode_head(feats)  # the head's logits, upsampled to the 16 x 24 labels
    up = F.interpolate(seg, size=(16, 24), mode='bilinear', align_corners=False)
    torch.testing.assert_close(loss, F.cross_entropy(up, labels, ignore_index=255))
    assert all(s.gt_sem_seg.shape == (32, 48) for s in samples)  # the batch is left as it was
    loss.backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_resized_phase_scale_1_is_the_host_loss_and_clashes_are_named():
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder',
                                  full_image_phase=dict(begin=0, scale=1.0)))
    host = MODELS.build(_seg_cfg('EncoderDecoder'))
    host.load_state_dict(model.state_dict())
    img, samples = _seg_batch()
    model.set_train_progress(0, 4)
    torch.testing.assert_close(model.loss(img, samples)['decode.loss_ce'],
                               host.loss(img, samples)['decode.loss_ce'])
    with pytest.raises(ValueError, match='context_tokens'):
        MODELS.build(_seg_cfg('WinWinEncoderDecoder', context_tokens=dict(pool=2),
                              full_image_phase=dict(begin=0, scale=0.5)))
    with pytest.raises(ValueError, match='scale'):
        WinWinFlowEstimator(net=TINY_FLOW, windows=dict(margin=0),
                            full_image_phase=dict(begin=1, scale=0.5))


def test_two_stage_phase_resized_then_full_size():
    """full_size_fraction=0.5 over 8 iterations with begin=2: iterations 0-1 train on the
    windows, 2-3 on whole images at half size (the resized stage's 2 x 3 token grid), 4-7 on
    whole images at full size, where the loss is the host model's on the same weights."""
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(
        begin=2, scale=0.5, full_size_fraction=0.5)))
    host = MODELS.build(_seg_cfg('EncoderDecoder'))
    host.load_state_dict(model.state_dict())
    img, samples = _seg_batch()  # a 4 x 6 token grid; windows of 2 x 2 tokens
    calls = _spy_forward_tokens(model.backbone)
    for it in range(8):
        model.set_train_progress(it, 8)
        loss = model.loss(img, samples)['decode.loss_ce']
        if it >= 4:
            torch.testing.assert_close(loss, host.loss(img, samples)['decode.loss_ce'])
    tokens = [n for n, *_ in calls]
    # windows: 2 windows of 4 tokens; half size: 6 tokens; full size: all 24
    assert tokens == [8, 8, 6, 6, 24, 24, 24, 24], tokens
    # a stage that would be empty over the run is named when the run length is known
    with pytest.raises(ValueError, match='one stage is empty'):
        model.set_train_progress(0, 3)  # full size from round(0.5 * 3) = 2: begin 2, empty


def _seg_batch_of(n, H=32, W=48, seed=0):
    """A batch of ``n`` images: the windows and shapes of :func:`_seg_batch`, cycled."""
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, H, W, generator=g)
    samples = []
    for b in range(n):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                            winwin_windows=WINS[b % 2], winwin_patch_size=P))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, H, W), generator=g))
        samples.append(s)
    return img, samples


@pytest.mark.parametrize('share, batch, used', [
    (0.5, 4, 2), (0.5, 3, 2), (0.3, 10, 3), (0.01, 4, 1), (1.0, 4, 4), (None, 3, 3)])
def test_part_batch_phase_is_the_host_loss_on_the_first_images(share, batch, used):
    """batch_fraction=f: a whole-image step is the host's loss on the first ceil(f * B)
    images of the batch (``used``, counted by hand); the window steps use every image."""
    phase = dict(begin=2) if share is None else dict(begin=2, batch_fraction=share)
    torch.manual_seed(0)
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=phase))
    host = MODELS.build(_seg_cfg('EncoderDecoder'))
    host.load_state_dict(model.state_dict())
    whole_model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=2)))
    whole_model.load_state_dict(model.state_dict())
    img, samples = _seg_batch_of(batch)

    model.set_train_progress(2, 4)
    got = model.loss(img, samples)['decode.loss_ce']
    torch.testing.assert_close(got, host.loss(img[:used], samples[:used])['decode.loss_ce'])
    if used < batch:  # the images left out do not move the loss
        img2 = img.clone()
        img2[used:] = torch.randn_like(img2[used:]) * 5
        torch.testing.assert_close(model.loss(img2, samples)['decode.loss_ce'], got)
    model.set_train_progress(1, 4)  # before the phase: windows of every image, as without it
    whole_model.set_train_progress(1, 4)
    torch.testing.assert_close(model.loss(img, samples)['decode.loss_ce'],
                               whole_model.loss(img, samples)['decode.loss_ce'])


def test_part_batch_phase_is_refused_where_the_phase_needs_every_image():
    with pytest.raises(ValueError, match='batch_fraction.*whole frame pairs'):
        WinWinFlowEstimator(net=TINY_FLOW, windows=dict(margin=0),
                            full_image_phase=dict(begin=1, batch_fraction=0.5))
    with pytest.raises(ValueError, match='Drop full_image_phase.batch_fraction'):
        check_full_image_phase(dict(begin=1, batch_fraction=0.5),
                               resized_for='whole frame pairs')
    assert check_full_image_phase(dict(begin=1, batch_fraction=1),
                                  resized_for='whole frame pairs')
    # the Win-Win detectors take it (tests/test_winwin_full_image_phase_det.py)
    assert check_full_image_phase(dict(begin=1, batch_fraction=0.5),
                                  resized_for='the training images', part_batch=True)


def depth_models(full_image_phase: dict):
    """mmseg's ``DepthEstimator`` of the tiny depth config (patch 8) and the
    ``WinWinDepthEstimator`` with ``full_image_phase`` and the same weights."""
    cfg = Config.fromfile(osp.join(CFG, 'vitdepth_rope-vit-tiny_fullres_1xb2-20i_'
                                        'synthetic-nyu-128x192.py')).model
    cfg.pop('data_preprocessor')
    cfg.backbone.patch_size = P
    torch.manual_seed(0)
    host = MODELS.build(cfg)
    model = MODELS.build(dict(cfg, type='WinWinDepthEstimator',
                              full_image_phase=full_image_phase))
    model.load_state_dict(host.state_dict())
    return host, model


def depth_batch(H=32, W=48):
    """Two images with the windows of :data:`WINS` and random depth maps."""
    g = torch.Generator().manual_seed(1)
    img = torch.randn(2, 3, H, W, generator=g)
    samples = []
    for b in range(2):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                            winwin_windows=WINS[b], winwin_patch_size=P))
        s.gt_depth_map = PixelData(data=torch.rand(1, H, W, generator=g) * 5 + 0.5)
        samples.append(s)
    return img, samples


def test_depth_windows_before_begin_host_loss_from_begin():
    host, model = depth_models(dict(begin_fraction=0.5))
    img, samples = depth_batch()
    img2, samples2 = _change_outside(img, samples, 'gt_depth_map', fill=9.0)

    model.set_train_progress(1, 4)  # begin = round(0.5 * 4) = 2
    win = model.loss(img, samples)['decode.loss_silog']
    torch.testing.assert_close(model.loss(img2, samples2)['decode.loss_silog'], win)
    model.set_train_progress(2, 4)
    torch.testing.assert_close(model.loss(img, samples)['decode.loss_silog'],
                               host.loss(img, samples)['decode.loss_silog'])
    assert abs(win.item() - host.loss(img, samples)['decode.loss_silog'].item()) > 1e-4


TINY_FLOW = dict(encoder=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)),
                 dec_embed_dims=32, dec_num_layers=2, dec_num_heads=2, dec_mlp_ratio=2.0,
                 head_hooks=(0, 1, 2, 2), head_features=16, head_layer_dims=(8, 16, 32, 32))


def test_flow_windows_before_begin_whole_pair_from_begin():
    torch.manual_seed(0)
    model = WinWinFlowEstimator(net=TINY_FLOW, windows=dict(margin=0),
                                full_image_phase=dict(begin=5))
    g = torch.Generator().manual_seed(0)
    H, W = 64, 96
    img1, img2 = torch.randn(2, 3, H, W, generator=g), torch.randn(2, 3, H, W, generator=g)
    wins = [[(0, 0, 2, 2), (2, 3, 2, 2)], [(1, 1, 2, 2), (0, 4, 2, 2)]]  # the pipeline's
    samples = []
    for w in wins:
        s = BaseDataElement(metainfo=dict(img_shape=(H, W), ori_shape=(H, W),
                                          winwin_windows=w))
        s.gt_flow = torch.randn(2, H, W, generator=g) * 3
        s.gt_valid = torch.ones(H, W, dtype=torch.bool)
        samples.append(s)
    # before begin: the windows of the metainfo; the target outside them is unseen
    model.set_train_progress(4, 10)
    win = model.loss(img1, img2, samples)['loss_flow']
    far = copy.deepcopy(samples)
    for b, ws in enumerate(wins):
        outside = torch.ones(H, W, dtype=torch.bool)
        for t, l, h, w in ws:
            outside[t * 16:(t + h) * 16, l * 16:(l + w) * 16] = False
        far[b].gt_flow = torch.where(outside, torch.full_like(far[b].gt_flow, 1e3),
                                     far[b].gt_flow)
    torch.testing.assert_close(model.loss(img1, img2, far)['loss_flow'], win)
    # from begin on: the whole pair, the EPE loss over every valid pixel (windows ignored)
    model.set_train_progress(5, 10)
    gt = torch.stack([s.gt_flow for s in samples])
    valid = torch.stack([s.gt_valid for s in samples])
    with torch.no_grad():
        want = masked_epe_loss(model.net(img1, img2), gt, valid)
    torch.testing.assert_close(model.loss(img1, img2, samples)['loss_flow'], want)


@pytest.mark.parametrize('setting, error, match', [
    (dict(begin=-1), ValueError, 'integer iteration >= 0'),
    (dict(begin=1.5), ValueError, 'begin_fraction'),
    (dict(begin=True), ValueError, 'integer iteration'),
    (dict(begin_fraction=1.0), ValueError, r'in \[0, 1\)'),
    (dict(begin_fraction='0.8'), ValueError, r'in \[0, 1\)'),
    (dict(begin=10, begin_fraction=0.5), ValueError, 'exactly one'),
    (dict(), ValueError, 'exactly one'),
    (dict(begn=10), UnknownSettingError, "Did you mean 'begin'"),
    (dict(every=1), ValueError, 'integer >= 2'),
    (dict(every=6, begin=3), ValueError, 'exactly one'),
    (2000, TypeError, 'dict'),
    (dict(begin=3, scale=0), ValueError, r'scale must be a number in \(0, 1\]'),
    (dict(begin=3, scale=1.5), ValueError, r'in \(0, 1\]'),
    (dict(begin=3, scale=True), ValueError, r'in \(0, 1\]'),
    (dict(scale=0.5), ValueError, 'exactly one'),
    (dict(begin=3, batch_fraction=0), ValueError, r'batch_fraction must be a number in \(0, 1\]'),
    (dict(begin=3, batch_fraction=1.5), ValueError, r'batch_fraction must be .* \(0, 1\]'),
    (dict(begin=3, batch_fraction=True), ValueError, r'batch_fraction must be'),
    (dict(begin=3, batch_fraction='1/2'), ValueError, r'batch_fraction must be'),
    (dict(batch_fraction=0.5), ValueError, 'exactly one'),
    (dict(begin=3, full_size_fraction=0.5), ValueError, 'scale is None'),
    (dict(begin=3, scale=1, full_size_fraction=0.5), ValueError, 'Set scale'),
    (dict(begin=3, scale=0.5, full_size_fraction=1), ValueError,
     r'full_size_fraction must be a number in \(0, 1\)'),
    (dict(begin=3, scale=0.5, full_size_fraction=True), ValueError, 'in \\(0, 1\\)'),
    (dict(begin_fraction=0.5, scale=0.5, full_size_fraction=0.5), ValueError,
     'must come after begin_fraction'),
    (dict(every=4, scale=0.5, full_size_fraction=0.5), ValueError, 'no meaning with every'),
])
def test_bad_settings_are_named(setting, error, match):
    with pytest.raises(error, match=match):
        check_full_image_phase(setting)
    with pytest.raises(error, match=match):
        MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=setting))


def test_phase_without_the_hook_and_past_the_end_are_errors():
    model = MODELS.build(_seg_cfg('WinWinEncoderDecoder', full_image_phase=dict(begin=3)))
    img, samples = _seg_batch()
    with pytest.raises(RuntimeError, match='FullImagePhaseHook'):
        model.loss(img, samples)
    with pytest.raises(ValueError, match='max_iters=3'):
        model.set_train_progress(0, 3)
    frac = MODELS.build(_seg_cfg('WinWinEncoderDecoder',
                                 full_image_phase=dict(begin_fraction=0.85)))
    frac.set_train_progress(2039, 2400)
    assert not frac.in_full_image_phase()
    frac.set_train_progress(2040, 2400)
    assert frac.in_full_image_phase()
    # a run too short for the fraction still ends with one whole-image iteration
    # (round(0.85 * 2) = 2 would leave none): begin = max_iters - 1
    frac.set_train_progress(0, 2)
    assert not frac.in_full_image_phase()
    frac.set_train_progress(1, 2)
    assert frac.in_full_image_phase()
    frac.set_train_progress(0, 1)
    assert frac.in_full_image_phase()
    with pytest.raises(ValueError, match='windows=None'):
        WinWinFlowEstimator(net=TINY_FLOW, windows=None, full_image_phase=dict(begin=1))
    # without the option a model never needs the hook
    plain = MODELS.build(_seg_cfg('WinWinEncoderDecoder'))
    assert not plain.in_full_image_phase()
    plain.loss(img, samples)


def test_configs_declare_the_hook():
    """The config itself declares the hook (configs/_base_/mmwinwin_hooks.py), so mmseg's
    and mmdet's own tools/train.py run the phase; no launcher adds it."""
    cfg = Config.fromfile(SEG_CFG)
    assert [h['type'] for h in cfg.custom_hooks].count('FullImagePhaseHook') == 1


class PhaseRecorder(Hook):
    """Records (runner.iter, whether the step trained on whole images) per training step."""

    def __init__(self):
        self.steps = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.steps.append((runner.iter, runner.model.in_full_image_phase()))


def _runner_cfg(data, work, **over):
    cfg = Config.fromfile(SEG_CFG)
    cfg.model.full_image_phase = dict(begin=2)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data
    cfg.work_dir = str(work)
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 100
    cfg.param_scheduler[0].end = 4
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    cfg.merge_from_dict(over)
    return cfg


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return generate_ade20k(str(tmp_path_factory.mktemp('ade')), num_train=4, num_val=2,
                           img_size=(128, 256))


def test_hook_sets_the_phase_from_runner_iter_and_after_resume(ade, tmp_path):
    runner = Runner.from_cfg(_runner_cfg(ade, tmp_path / 'run'))
    rec = PhaseRecorder()
    runner.register_hook(rec, priority='LOWEST')
    runner.train()
    assert rec.steps == [(0, False), (1, False), (2, True), (3, True)]
    for ckpt, want in (('iter_1.pth', [(1, False), (2, True), (3, True)]),
                       ('iter_3.pth', [(3, True)])):
        resumed = Runner.from_cfg(_runner_cfg(ade, tmp_path / 'run', resume=True,
                                              load_from=str(tmp_path / 'run' / ckpt)))
        rec = PhaseRecorder()
        resumed.register_hook(rec, priority='LOWEST')
        resumed.train()
        assert rec.steps == want, ckpt


def test_tools_train_switches_at_iteration_2_of_4(ade, tmp_path, capsys):
    cfg = tmp_path / 'phase.py'
    cfg.write_text(f'_base_ = [{SEG_CFG!r}]\nmodel = dict(full_image_phase=dict(_delete_=True, begin=2))\n')
    argv = sys.argv
    sys.argv = ['train.py', str(cfg), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                f'train_dataloader.dataset.data_root={ade}',
                f'val_dataloader.dataset.data_root={ade}',
                f'test_dataloader.dataset.data_root={ade}', 'train_cfg.max_iters=4',
                'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
                'default_hooks.logger.interval=1', 'param_scheduler.0.end=4']
    try:
        runpy.run_path(osp.join(ROOT, 'tools', 'train.py'), run_name='__main__')
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    log = out.out + out.err
    assert 'iterations 2 .. 3 train on whole images (2 of 4)' in log
    assert 'iteration 2 onwards trains on whole images' in log
    assert 'mIoU' in log and (tmp_path / 'work' / 'iter_4.pth').exists()


#: the first whole-image fraction of max_iters of each family's recipe (docs/winwin.md,
#: "Defaults"): segmentation the last third, depth and flow the last sixth
PHASE_BEGIN = {'WinWinEncoderDecoder': 2 / 3, 'WinWinDepthEstimator': 5 / 6,
               'WinWinFlowEstimator': 5 / 6}


def test_configs_default_to_the_recipe_and_the_models_to_the_paper():
    """Every Win-Win config trains with its family's recipe: segmentation windows for 2/3 of
    max_iters and whole images for the last 1/3, depth and flow windows for 5/6 and whole
    images (frame pairs) for the last 1/6; the model classes keep the paper's windows-only
    training when the option is not given."""
    import glob
    import inspect

    from mmwinwin.models.winwin import WinWinDepthEstimator, WinWinEncoderDecoder
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', 'winwin*', 'winwin-*.py')))
    assert len(paths) >= 12
    for path in paths:
        model = Config.fromfile(path).model
        assert model.type in ('WinWinEncoderDecoder', 'WinWinDepthEstimator',
                              'WinWinFlowEstimator'), path
        assert dict(model.full_image_phase) == {'begin_fraction': PHASE_BEGIN[model.type]}, path
        assert full_image_phase_begin(model.full_image_phase, 160000) == (
            106667 if model.type == 'WinWinEncoderDecoder' else 133333)
    for cls in (WinWinEncoderDecoder, WinWinDepthEstimator, WinWinFlowEstimator):
        assert inspect.signature(cls.__init__).parameters['full_image_phase'].default is None


#: the model types whose configs give the whole-image phase its own learning rate (the best
#: measured recipe of their task family, docs/winwin.md "The phase's own learning rate")
PHASE_LR_RESTART = ('WinWinEncoderDecoder', 'WinWinFlowEstimator')


def test_recipe_configs_restart_the_learning_rate_at_the_phase():
    """The recipe's schedule, stated here: in the families of PHASE_LR_RESTART every
    scheduler of the windows part ends by the phase's first iteration (PHASE_BEGIN of
    max_iters, so it has decayed to its eta_min there) and
    one cosine restart at the optimizer's lr (weight 1) anneals it to 0 over the phase; the
    other families keep their host's schedule."""
    import glob
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', 'winwin*', 'winwin-*.py')))
    restarted = 0
    for path in paths:
        cfg = Config.fromfile(path)
        iters = cfg.train_cfg.max_iters
        begin = min(round(PHASE_BEGIN[cfg.model.type] * iters), iters - 1)
        sched = [dict(s) for s in cfg.param_scheduler]
        phase = [s for s in sched if s['type'] == 'CosineRestartLR']
        if cfg.model.type not in PHASE_LR_RESTART:
            assert not phase, path
            continue
        restarted += 1
        assert phase == [dict(type='CosineRestartLR', periods=[iters - begin],
                              restart_weights=[1.0], eta_min=0.0, by_epoch=False,
                              begin=begin, end=iters)], path
        windows = [s for s in sched if s['type'] != 'CosineRestartLR']
        assert windows and all(s['end'] <= begin and not s['by_epoch'] for s in windows), path
    assert restarted >= 15
