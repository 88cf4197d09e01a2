"""Win-Win transform, segmentor and depth estimator on tiny models (CPU)."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor  # noqa: F401  (registry)
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

import mmwinwin  # noqa: F401
from mmwinwin.datasets.winwin import WINWIN_META_KEYS

P = 8
BACKBONE = dict(type='RoPEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2),
                patch_size=P, out_indices=(0, 1))


def _seg_model(**kw):
    cfg = dict(type='WinWinEncoderDecoder', backbone=BACKBONE,
               decode_head=dict(type='FCNHead', in_channels=32, in_index=-1, channels=16,
                                num_convs=1, num_classes=5, norm_cfg=None,
                                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
               auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=0, channels=8,
                                   num_convs=1, num_classes=5, norm_cfg=None),
               train_cfg=dict(), test_cfg=dict(mode='whole'))
    cfg.update(kw)
    return MODELS.build(ConfigDict(cfg))


def _position_label(H, W):
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    return ((yy // P) * 1000 + (xx // P))[None]


def _sample(H, W, windows=None, token_index=None, label=None):
    s = SegDataSample()
    meta = dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W))
    if windows is not None:
        meta['winwin_windows'] = windows
    if token_index is not None:
        meta.update(winwin_token_index=token_index, winwin_grid=(H // P, W // P))
    s.set_metainfo(meta)
    s.gt_sem_seg = PixelData(data=label if label is not None else
                             torch.randint(0, 5, (1, H, W)))
    return s


def test_transform_records_windows_and_packs():
    t = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=3, patch_size=P,
                              seed=0))
    pack = TRANSFORMS.build(dict(type='PackSegInputs', meta_keys=('img_shape',) +
                                 WINWIN_META_KEYS))
    res = dict(img=np.zeros((50, 70, 3), np.uint8), img_shape=(50, 70),
               gt_seg_map=np.zeros((50, 70), np.uint8))
    out = pack(t(res))
    meta = out['data_samples'].metainfo
    # the full grid is the whole image's test-time grid (ceil: 50x70 px at patch 8 -> 7x9);
    # windows lie on whole patches inside the image (floor: 6x8)
    assert meta['winwin_grid'] == (7, 9) and meta['winwin_patch_size'] == P
    assert len(meta['winwin_windows']) == 2
    for top, left, h, w in meta['winwin_windows']:
        assert (h, w) == (3, 3) and top + h <= 6 and left + w <= 8
    rnd = TRANSFORMS.build(dict(type='WinWinWindows', window_size=3, patch_size=P,
                                mode='random_tokens', seed=0))
    meta = rnd(dict(img=np.zeros((50, 70, 3), np.uint8)))
    assert len(meta['winwin_token_index']) == 18
    with pytest.raises(ValueError, match='do not fit'):
        t(dict(img=np.zeros((20, 20, 3), np.uint8)))
    shrink = TRANSFORMS.build(dict(type='WinWinWindows', window_size=3, patch_size=P,
                                   shrink_to_fit=True))
    assert shrink(dict(img=np.zeros((16, 40, 3), np.uint8)))['winwin_windows'][0][2] == 2
    with pytest.raises(ValueError, match='window_size'):
        TRANSFORMS.build(dict(type='WinWinWindows'))


def test_window_features_and_label_crops_line_up():
    torch.manual_seed(0)
    model = _seg_model(auxiliary_head=None)
    H, W = 48, 64
    wins = [[(0, 0, 3, 3), (2, 4, 3, 3)], [(3, 1, 3, 3), (0, 5, 3, 3)]]
    samples = [_sample(H, W, w, label=_position_label(H, W)) for w in wins]
    img = torch.randn(2, 3, H, W)
    captured = {}

    def capture(feats, data_samples):
        captured['feats'], captured['samples'] = feats, data_samples
        return {'loss_x': feats[-1].sum() * 0}

    model._decode_head_forward_train = capture
    model.loss(img, samples)
    feats, crops = captured['feats'], captured['samples']
    assert feats[-1].shape == (4, 32, 3, 3) and len(crops) == 4
    # independent reference, written here: each window's pixels cropped by slicing, patch-
    # embedded with the conv weights directly, tokens in row-major order at their full-image
    # (y, x); both windows of an image together through the backbone's blocks
    proj = model.backbone.patch_embed.proj
    toks, poss = [], []
    for b in range(2):
        tb, pb = [], []
        for (t, l, h, w) in wins[b]:
            crop = img[b:b + 1, :, t * P:(t + h) * P, l * P:(l + w) * P]
            emb = torch.nn.functional.conv2d(crop, proj.weight, proj.bias, stride=P)
            tb.append(emb[0].reshape(emb.shape[1], -1).T)
            pb += [(t + i, l + j) for i in range(h) for j in range(w)]
        toks.append(torch.cat(tb))
        poss.append(torch.tensor(pb, dtype=torch.float32))
    ref = model.backbone.forward_tokens(torch.stack(toks), torch.stack(poss), (H // P, W // P))[-1]
    k = 0
    for b in range(2):
        for j, (t, l, h, w) in enumerate(wins[b]):
            grid = ref[b, j * 9:(j + 1) * 9].T.reshape(32, 3, 3)
            assert torch.allclose(feats[-1][k], grid, atol=1e-5)
            label = crops[k].gt_sem_seg.data[0]
            assert label.shape == (3 * P, 3 * P)
            # every pixel of the crop belongs to the token of the feature grid cell above it
            cy = torch.arange(3 * P) // P + t
            cx = torch.arange(3 * P) // P + l
            assert torch.equal(label, cy[:, None] * 1000 + cx[None, :])
            assert crops[k].metainfo['img_shape'] == (3 * P, 3 * P)
            k += 1


def test_loss_backward_batches_and_whole_and_slide_inference():
    torch.manual_seed(0)
    model = _seg_model()
    H, W = 48, 64
    samples = [_sample(H, W, [(0, 0, 3, 3), (3, 4, 3, 3)]),
               _sample(H, W, [(1, 1, 2, 2), (3, 5, 2, 2)]),  # other size: own group
               _sample(H, W, [(2, 2, 3, 3), (0, 5, 3, 3)])]
    losses = model.loss(torch.randn(3, 3, H, W), samples)
    assert {'decode.loss_ce', 'aux.loss_ce', 'decode.acc_seg'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        img = torch.randn(2, 3, H, W)
        metas = [dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W))] * 2
        out = model.inference(img, metas)
        assert out.shape == (2, 5, H, W)
        full = model.backbone(img)[-1]
        assert full.shape == (2, 32, H // P, W // P)  # one whole pass
        model.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(16, 16))
        assert model.inference(img[:1], metas[:1]).shape == (1, 5, H, W)


def test_random_tokens_mode_masks_labels():
    torch.manual_seed(0)
    model = _seg_model(auxiliary_head=None)
    H, W = 32, 48
    idx = [0, 5, 7, 20]
    captured = {}

    def capture(feats, data_samples):
        captured['feats'], captured['samples'] = feats, data_samples
        return {'loss_x': feats[-1].sum() * 0}

    model._decode_head_forward_train = capture
    model.loss(torch.randn(1, 3, H, W), [_sample(H, W, token_index=idx,
                                                 label=torch.zeros(1, H, W, dtype=torch.long))])
    f = captured['feats'][-1][0]  # (C, 4, 6), zeros outside kept tokens
    kept = torch.zeros(24, dtype=torch.bool)
    kept[idx] = True
    assert (f.reshape(32, -1)[:, ~kept] == 0).all() and (f.reshape(32, -1)[:, kept] != 0).any()
    lab = captured['samples'][0].gt_sem_seg.data[0]
    assert (lab[:P, :P] == 0).all() and (lab[:P, P:2 * P] == 255).all()


def test_missing_windows_is_a_clear_error():
    model = _seg_model()
    s = _sample(32, 32)
    with pytest.raises(KeyError, match='WinWinWindows'):
        model.loss(torch.randn(1, 3, 32, 32), [s])
    with pytest.raises(ValueError, match='outside'):
        model.loss(torch.randn(1, 3, 32, 32), [_sample(32, 32, [(3, 3, 2, 2)])])


def test_depth_estimator_window_loss_and_whole_predict():
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(
        type='WinWinDepthEstimator', backbone=BACKBONE,
        decode_head=dict(type='ViTDepthHead', in_channels=[32, 32], in_index=[0, 1],
                         channels=16, num_upsample=2, max_depth=10.0),
        test_cfg=dict(mode='whole')))
    H, W = 48, 64
    samples = []
    for wins in ([(0, 0, 3, 3), (3, 4, 3, 3)], [(1, 2, 3, 3), (2, 5, 3, 3)]):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(H, W), pad_shape=(H, W), ori_shape=(H, W),
                            winwin_windows=wins))
        s.gt_depth_map = PixelData(data=torch.rand(1, H, W) * 5 + 0.5)
        samples.append(s)
    losses = model.loss(torch.randn(2, 3, H, W), samples)
    assert set(losses) == {'decode.loss_silog'} and torch.isfinite(losses['decode.loss_silog'])
    losses['decode.loss_silog'].backward()
    model.eval()
    with torch.no_grad():
        preds = model.predict(torch.randn(2, 3, H, W), samples)
    d = preds[0].pred_depth_map.data
    assert d.shape == (1, H, W) and (d > 0).all() and (d < 10).all()


def test_transform_in_an_mmdet_pipeline():
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        t = DET_TRANSFORMS.build(dict(type='WinWinWindows', window_size=2, patch_size=16, seed=1))
        pack = DET_TRANSFORMS.build(dict(type='PackDetInputs',
                                         meta_keys=('img_shape',) + WINWIN_META_KEYS))
    res = dict(img=np.zeros((64, 96, 3), np.uint8), img_shape=(64, 96),
               gt_bboxes=np.zeros((0, 4), np.float32), gt_bboxes_labels=np.zeros((0,), np.int64))
    meta = pack(t(res))['data_samples'].metainfo
    assert meta['winwin_grid'] == (4, 6) and len(meta['winwin_windows']) == 2


def test_winwin_packers_carry_the_window_metainfo():
    """WinWinPackSegInputs / WinWinPackDetInputs = the host packer's meta_keys + WinWin's."""
    from mmdet.datasets.transforms import PackDetInputs
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmseg.datasets.transforms import PackSegInputs
    t = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=2, patch_size=P,
                              seed=0))
    res = dict(img=np.zeros((48, 64, 3), np.uint8), img_shape=(48, 64), ori_shape=(48, 64),
               img_path='a.jpg', gt_seg_map=np.zeros((48, 64), np.uint8))
    seg = TRANSFORMS.build(dict(type='WinWinPackSegInputs'))
    assert seg.meta_keys == PackSegInputs().meta_keys + WINWIN_META_KEYS
    meta = seg(t(dict(res)))['data_samples'].metainfo
    assert meta['winwin_grid'] == (48 // P, 64 // P) and len(meta['winwin_windows']) == 2
    assert meta['img_path'] == 'a.jpg'
    depth_keys = ('img_path', 'depth_map_path', 'img_shape', 'category_id')
    depth = TRANSFORMS.build(dict(type='WinWinPackSegInputs', meta_keys=depth_keys))
    assert depth.meta_keys == depth_keys + WINWIN_META_KEYS
    assert TRANSFORMS.build(dict(type='WinWinPackSegInputs', meta_keys=('img_shape',) +
                                 WINWIN_META_KEYS)).meta_keys == ('img_shape',) + WINWIN_META_KEYS
    det = DET_TRANSFORMS.build(dict(type='mmwinwin.WinWinPackDetInputs'))
    assert det.meta_keys == PackDetInputs().meta_keys + WINWIN_META_KEYS
    res = dict(img=np.zeros((48, 64, 3), np.uint8), img_shape=(48, 64), ori_shape=(48, 64),
               img_id=0, img_path='a.jpg', scale_factor=(1.0, 1.0), flip=False,
               flip_direction=None, gt_bboxes=np.zeros((0, 4), np.float32),
               gt_bboxes_labels=np.zeros((0,), np.int64))
    meta = det(t(res))['data_samples'].metainfo
    assert meta['winwin_patch_size'] == P and len(meta['winwin_windows']) == 2
