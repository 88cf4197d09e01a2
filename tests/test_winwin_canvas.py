"""Win-Win canvas inputs: ``WinWinPack*Inputs(pixels='windows')`` packs only the windows'
pixels, and the models train on them exactly as on whole images.

* The canvas equals the windows' pixel blocks cut out by hand here, side by side.
* The core embeds a window read from a canvas as the whole image's patch embedding gathered
  at the window's tokens, at the window's full-image positions.
* Through the real packers and the configs' own mmseg / mmdet data preprocessors, a Win-Win
  segmentor's, depth estimator's, Mask R-CNN's and panoptic Mask2Former's loss on canvases equals the loss on whole
  images with the same windows and weights (the whole-image path is tested against mmseg /
  mmdet elsewhere: tests/test_winwin_model.py, tests/test_winwin_detection.py), and the
  preprocessor only sees the canvas (its normalised pixels, checked by hand).
* Settings that need whole training images are clear errors.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import assert_same_losses
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmwinwin.datasets.winwin import WinWinPackDetInputs, WinWinPackSegInputs, WinWinWindows
from mmwinwin.layers.winwin import embed_windows

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG = osp.join(ROOT, 'configs', 'winwin', 'winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py')
DEPTH = osp.join(ROOT, 'configs', 'winwin', 'winwin-2x4_vitdepth_rope-vit-tiny_1xb2-20i_synthetic-nyu-128x192.py')
MRCNN = osp.join(ROOT, 'configs', 'vitdet', 'winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py')
M2F_PAN = osp.join(ROOT, 'configs', 'vitdet',
                   'winwin-2x4_mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py')
P = 16


def _image(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _hand_canvas(img, windows):
    """Windows' pixel blocks side by side, top-aligned, zeros below a shorter one."""
    blocks = [img[t * P:(t + h) * P, l * P:(l + w) * P] for t, l, h, w in windows]
    height = max(b.shape[0] for b in blocks)
    padded = [np.concatenate([b, np.zeros((height - b.shape[0],) + b.shape[1:], b.dtype)])
              for b in blocks]
    return np.concatenate(padded, axis=1)


def _win_results(img, windows, **extra):
    h, w = img.shape[:2]
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), img_path='x.png',
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
                winwin_windows=windows, winwin_grid=(h // P, w // P), winwin_patch_size=P,
                **extra)


# ------------------------------------------------------------------ the packed canvas
@pytest.mark.parametrize('packer', [WinWinPackSegInputs, WinWinPackDetInputs])
def test_canvas_is_the_windows_pixel_blocks_cut_by_hand(packer):
    img = _image(96, 160, 0)  # a 6x10 token grid
    seg = np.random.default_rng(1).integers(0, 5, (96, 160)).astype(np.uint8)
    for windows, offsets in [([(1, 2, 3, 3), (2, 6, 3, 3)], [(0, 0), (0, 3)]),
                             ([(0, 0, 2, 2), (3, 5, 3, 3)], [(0, 0), (0, 2)])]:
        extra = dict(gt_seg_map=seg) if packer is WinWinPackSegInputs else {}
        whole = packer()(_win_results(img, windows, **extra))
        canvas = packer(pixels='windows')(_win_results(img, windows, **extra))
        want = torch.from_numpy(_hand_canvas(img, windows).transpose(2, 0, 1).copy())
        assert torch.equal(canvas['inputs'], want)
        assert torch.equal(whole['inputs'], torch.from_numpy(img.transpose(2, 0, 1).copy()))
        meta = canvas['data_samples'].metainfo
        assert meta['winwin_canvas'] == offsets
        assert meta['winwin_windows'] == windows and meta['winwin_grid'] == (6, 10)
        assert meta['img_shape'] == (96, 160)  # the targets' frame: the whole image
        assert 'winwin_canvas' not in whole['data_samples'].metainfo
        if packer is WinWinPackSegInputs:  # targets stay whole
            assert torch.equal(canvas['data_samples'].gt_sem_seg.data[0],
                               torch.from_numpy(seg).long())


def test_canvas_embedding_is_the_whole_image_embedding_at_the_windows():
    from mmwinwin.layers import PatchEmbed
    torch.manual_seed(0)
    embed = PatchEmbed(in_channels=3, embed_dims=8, patch_size=P)
    img = torch.randn(2, 3, 96, 160)
    batch_windows = [[(1, 2, 3, 3), (2, 6, 3, 3)], [(0, 0, 3, 3), (3, 7, 3, 3)]]
    canvases = torch.stack([torch.from_numpy(_hand_canvas(
        im.permute(1, 2, 0).numpy(), w)).permute(2, 0, 1) for im, w in zip(img, batch_windows)])
    offsets = [[(0, 0), (0, 3)]] * 2
    tok, pos = embed_windows(embed, canvases, batch_windows, P, offsets)
    full, _ = embed(img)  # (2, 6*10, C), row-major
    for b, wins in enumerate(batch_windows):
        yx = [(y, x) for t, l, h, w in wins for y in range(t, t + h) for x in range(l, l + w)]
        want = full[b, [y * 10 + x for y, x in yx]]
        torch.testing.assert_close(tok[b], want)
        assert pos[b].tolist() == [[float(y), float(x)] for y, x in yx]


# ------------------------------------------------------------------ models: canvas == whole
def _build(cfg_path, scope, **model_opts):
    import mmwinwin  # noqa: F401  (registers the modules)
    del mmwinwin
    init_default_scope(scope)
    cfg = Config.fromfile(cfg_path)
    if 'full_image_phase' in cfg.model:  # the configs' recipe needs whole images, not canvases
        cfg.model.full_image_phase = None
    for k, v in model_opts.items():
        node = cfg.model
        *path, last = k.split('.')
        for part in path:
            node = node[part]
        node[last] = v
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train(), cfg


def _loss(model, packed, seed=1):
    data = model.data_preprocessor(dict(inputs=[p['inputs'] for p in packed],
                                        data_samples=[p['data_samples'] for p in packed]), True)
    torch.manual_seed(seed)
    return data['inputs'], model.loss(data['inputs'], data['data_samples'])


def _normalised(canvas_hwc, pre):
    x = torch.from_numpy(canvas_hwc.copy()).permute(2, 0, 1).float()[[2, 1, 0]]  # bgr -> rgb
    return (x - pre.mean) / pre.std


# image 0: two 4x4-token windows; image 1: two 3x3 windows (a smaller canvas, padded by the
# preprocessor to the batch's; grouped apart by window size in the model)
BATCH_WINDOWS = [[(1, 2, 4, 4), (3, 7, 4, 4)], [(0, 0, 3, 3), (4, 8, 3, 3)]]


@pytest.mark.parametrize('cfg_path', [SEG, DEPTH], ids=['segmentation', 'depth'])
def test_segmentor_loss_on_canvas_equals_whole_image_loss(cfg_path):
    model, cfg = _build(cfg_path, 'mmseg', **{'data_preprocessor.size': None,
                                              'data_preprocessor.size_divisor': P})
    h, w = (128, 256) if cfg_path == SEG else (128, 192)
    rng = np.random.default_rng(3)
    imgs = [_image(h, w, 10 + i) for i in range(2)]
    if cfg_path == SEG:
        targets = [dict(gt_seg_map=rng.integers(0, 7, (h, w)).astype(np.uint8),
                        reduce_zero_label=True) for _ in imgs]
    else:
        targets = [dict(gt_depth_map=rng.uniform(0.5, 9.0, (h, w)).astype(np.float32))
                   for _ in imgs]
    whole_packer = WinWinPackSegInputs()
    canvas_packer = WinWinPackSegInputs(pixels='windows')
    whole = [whole_packer(_win_results(im, wins, **t))
             for im, wins, t in zip(imgs, BATCH_WINDOWS, targets)]
    canvas = [canvas_packer(_win_results(im, wins, **t))
              for im, wins, t in zip(imgs, BATCH_WINDOWS, targets)]
    whole_in, want = _loss(model, whole)
    canvas_in, got = _loss(model, canvas)
    assert_same_losses(got, want)
    # the preprocessor saw only the canvases: 64x128 and 48x96 px, padded to 64x128
    assert tuple(whole_in.shape) == (2, 3, h, w)
    assert tuple(canvas_in.shape) == (2, 3, 64, 128)
    pre = model.data_preprocessor
    torch.testing.assert_close(canvas_in[0], _normalised(_hand_canvas(imgs[0], BATCH_WINDOWS[0]), pre))
    torch.testing.assert_close(canvas_in[1, :, :48, :96],
                               _normalised(_hand_canvas(imgs[1], BATCH_WINDOWS[1]), pre))
    # the gradient reaches the patch embedding the same way
    sum(v for k, v in got.items() if 'loss' in k).backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def _det_results(img, windows, rects, labels, panoptic=False):
    h, w = img.shape[:2]
    masks = np.zeros((len(rects), h, w), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rects):
        masks[k, y1:y2, x1:x2] = 1
    extra = {}
    if panoptic:  # stuff 2 (top) / 3 (bottom), things 0 / 1, a void band
        sem = np.where(np.arange(h)[:, None] < h // 2, 2, 3).repeat(w, 1).astype(np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(rects):
            sem[y1:y2, x1:x2] = labels[k]
        sem[h - 12:, :] = 255
        extra['gt_seg_map'] = sem
    return _win_results(img, windows, img_id=0,
                        gt_bboxes=HorizontalBoxes(torch.tensor(rects, dtype=torch.float32)),
                        gt_bboxes_labels=np.array(labels, np.int64),
                        gt_ignore_flags=np.zeros(len(rects), bool),
                        gt_masks=BitmapMasks(masks, h, w), **extra)


@pytest.mark.parametrize('cfg_path', [MRCNN, M2F_PAN], ids=['mask-rcnn', 'mask2former-panoptic'])
def test_detector_loss_on_canvas_equals_whole_image_loss(cfg_path):
    # batch_augments=None, pad_mask=False: padding the batch to 128x128 or the masks to the
    # canvas are errors with canvases (below); on the whole-image path of 128x128 images
    # both are no-ops
    model, _ = _build(cfg_path, 'mmdet', **{'data_preprocessor.batch_augments': None,
                                            'data_preprocessor.pad_mask': False})
    panoptic = cfg_path == M2F_PAN
    imgs = [_image(128, 128, 20 + i) for i in range(2)]
    windows = [[(0, 0, 4, 4), (4, 4, 4, 4)], [(0, 4, 3, 3), (5, 0, 3, 3)]]
    # objects inside windows, cut by a window border (border rule), outside every window
    rects = [[(8, 8, 40, 50), (70, 66, 120, 110), (50, 10, 80, 40), (100, 0, 127, 20)],
             [(66, 4, 110, 40), (5, 90, 30, 127), (40, 60, 60, 80)]]
    labels = [[0, 1, 0, 1], [1, 0, 1]]
    whole = [WinWinPackDetInputs()(_det_results(im, w, r, lb, panoptic))
             for im, w, r, lb in zip(imgs, windows, rects, labels)]
    canvas = [WinWinPackDetInputs(pixels='windows')(_det_results(im, w, r, lb, panoptic))
              for im, w, r, lb in zip(imgs, windows, rects, labels)]
    whole_in, want = _loss(model, whole)
    canvas_in, got = _loss(model, canvas)
    assert_same_losses(got, want)
    assert tuple(whole_in.shape) == (2, 3, 128, 128)
    assert tuple(canvas_in.shape) == (2, 3, 64, 128)  # 64x128 and 48x96 canvases, padded
    pre = model.data_preprocessor
    torch.testing.assert_close(canvas_in[1, :, :48, :96],
                               _normalised(_hand_canvas(imgs[1], windows[1]), pre))


# ------------------------------------------------------------------ errors
def test_packer_errors():
    with pytest.raises(ValueError, match="pixels must be 'image'"):
        WinWinPackSegInputs(pixels='canvas')
    img = _image(64, 64, 0)
    with pytest.raises(KeyError, match='WinWinWindows'):
        WinWinPackDetInputs(pixels='windows')(dict(img=img, img_shape=(64, 64)))
    # the random-tokens ablation has no windows to cut
    t = WinWinWindows(num_windows=2, window_size=1, patch_size=P, mode='random_tokens', seed=0)
    results = t(dict(img=img, img_shape=(64, 64)))
    with pytest.raises(ValueError, match="random_tokens.*pixels='image'"):
        WinWinPackSegInputs(pixels='windows')(results)


def _seg_canvas_batch():
    img = _image(128, 256, 0)
    packed = WinWinPackSegInputs(pixels='windows')(_win_results(
        img, [(0, 0, 4, 4), (4, 8, 4, 4)], gt_seg_map=np.zeros((128, 256), np.uint8)))
    return packed


@pytest.mark.parametrize('opts, match', [
    (dict(full_image_phase=dict(begin=1)), r"full_image_phase.*pixels='image'"),
    (dict(context_tokens=dict(pool=4)), r"context_tokens.*context_tokens=None"),
    ({}, r'size=\(128, 256\).*size=None and size_divisor=16'),
])
def test_segmentor_refuses_canvas_for_whole_image_settings(opts, match):
    model_opts = dict(opts)
    if opts:
        model_opts.update({'data_preprocessor.size': None, 'data_preprocessor.size_divisor': P})
    model, _ = _build(SEG, 'mmseg', **model_opts)
    model.set_train_progress(0, 2)
    with pytest.raises(ValueError, match=match):
        _loss(model, [_seg_canvas_batch()])


def test_mixed_batch_and_fixed_size_pad_are_errors():
    model, _ = _build(SEG, 'mmseg', **{'data_preprocessor.size': None,
                                       'data_preprocessor.size_divisor': P})
    img = _image(128, 256, 0)
    whole = WinWinPackSegInputs()(_win_results(img, [(0, 0, 4, 4), (4, 8, 4, 4)],
                                               gt_seg_map=np.zeros((128, 256), np.uint8)))
    with pytest.raises(ValueError, match='mixes canvases'):
        _loss(model, [whole, _seg_canvas_batch()])
    packed = WinWinPackDetInputs(pixels='windows')(_det_results(
        _image(128, 128, 0), [(0, 0, 4, 4), (4, 4, 4, 4)], [(8, 8, 40, 50)], [0]))
    batch = dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']])
    # raised by train_step before the preprocessor pads anything
    # the Win-Win twin turns both off for its canvases; a config that keeps mmdet's LSJ
    # padding (mask padding and a BatchFixedSizePad) is refused with the fix
    det, _ = _build(MRCNN, 'mmdet', **{
        'data_preprocessor.pad_mask': True,
        'data_preprocessor.batch_augments': [dict(type='BatchFixedSizePad', size=(128, 128),
                                                  pad_mask=True)]})
    with pytest.raises(ValueError, match='pad_mask=True.*pad_mask=False'):
        det.train_step(batch, None)
    det.data_preprocessor.pad_mask = False
    with pytest.raises(ValueError, match='BatchFixedSizePad.*batch_augments=None'):
        det.train_step(batch, None)


# ------------------------------------------------------------------ the measurement tool
def test_canvas_benchmark_reports_the_canvas_bytes(tmp_path):
    """tools/analysis_tools/benchmark_winwin_canvas.py on the 1280x720 2x22 config: the canvas is 2 blocks
    of 22x22 patches of 16 px side by side; its bytes are that share of the image's."""
    import json
    import runpy
    import sys
    out = tmp_path / 'canvas.json'
    argv = sys.argv
    sys.argv = ['benchmark_winwin_canvas.py', '--settings', 'seg', '--batch', '1',
                '--repeats', '1', '--out', str(out)]
    try:
        runpy.run_path(osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_winwin_canvas.py'),
                       run_name='__main__')
    finally:
        sys.argv = argv
    seg = json.loads(out.read_text())['seg']
    side = 22 * 16
    assert seg['windows']['preprocessed_shape'] == [1, 3, side, 2 * side]
    assert seg['image']['preprocessed_shape'] == [1, 3, 720, 1280]
    assert seg['windows']['packed_input_bytes'] == 3 * side * 2 * side  # uint8
    assert seg['windows']['preprocessed_bytes'] == 4 * 3 * side * 2 * side  # float32
    assert seg['packed_input_bytes_canvas_over_image'] == pytest.approx(2 * side ** 2 / (720 * 1280))
