"""Win-Win detectors (Mask R-CNN, Mask2Former instance and panoptic) on the tiny
ViTDet-style RoPE ViT.

* With one window, the Win-Win loss equals the host's own loss (mmdet's, called directly)
  on the window's pixels cut out by hand, with targets cropped by hand here: RoPE makes
  attention depend on position offsets only, so the window's tokens at their full-image
  positions give the cut-out image's features. This checks the whole path: embedding only
  the window, the feature grid, the crop of boxes / masks / panoptic segments, metainfo.
* A window with no instance is a valid negative sample (finite loss, gradients).
* Missing windows and a wrong patch size are clear errors.
* Each model trains 2 iterations through tools/train.py on generated COCO data (finite
  losses, weights moved) and is evaluated on whole images through tools/test.py.
"""
import glob
import math
import os.path as osp
import re

import numpy as np
import pytest
from conftest import run_tool_in_process
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'vitdet')
MRCNN = 'winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py'
M2F = 'winwin-2x4_mask2former_rope-vit-tiny-win4_2i_coco-synth-128x128.py'
M2F_PAN = 'winwin-2x4_mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py'
S = 128


def _build(cfg_name):
    import mmwinwin  # noqa: F401  (registers the modules)
    del mmwinwin
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(CFG, cfg_name))
    cfg.model.full_image_phase = None  # the window loss (the configs' phase: full_image_phase_det)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train()


def _rects_to_instances(rects, labels, h, w):
    masks = np.zeros((len(rects), h, w), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rects):
        masks[k, y1:y2, x1:x2] = 1
    # plain tensors: mmdet's data preprocessor (boxtype2tensor=True) hands boxes so
    return InstanceData(bboxes=torch.tensor(rects, dtype=torch.float32).reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long),
                        masks=BitmapMasks(masks, h, w))


def _sample(rects, labels, size, windows=None, sem=None, patch=16):
    meta = dict(img_shape=size, pad_shape=size, batch_input_shape=size, ori_shape=size,
                scale_factor=(1.0, 1.0))
    if windows is not None:
        meta.update(winwin_windows=windows, winwin_patch_size=patch,
                    winwin_grid=(size[0] // 16, size[1] // 16))
    s = DetDataSample(metainfo=meta)
    s.gt_instances = _rects_to_instances(rects, labels, *size)
    if sem is not None:
        s.gt_sem_seg = PixelData(sem_seg=sem)
    return s


def _finite_total(losses):
    total = 0
    for k, v in losses.items():
        if 'loss' in k:
            for t in (v if isinstance(v, (list, tuple)) else [v]):
                assert torch.isfinite(t).all(), k
                total = total + t.sum()
    return total


@pytest.mark.parametrize('cfg_name', [MRCNN, M2F, M2F_PAN])
def test_one_window_loss_equals_host_loss_on_hand_cut_window(cfg_name):
    model = _build(cfg_name)
    # the mmdet class the Win-Win class extends (the first in its MRO)
    host = next(c for c in type(model).__mro__ if c.__module__.startswith('mmdet.'))
    assert host.__module__.startswith('mmdet.')
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, S, S, generator=g)
    win = (2, 3, 4, 4)  # tokens -> pixels y 32..96, x 48..112
    y1, x1 = 32, 48
    # things wholly inside the window, one wholly outside (gone after the crop)
    rects = [(52, 40, 80, 70), (84, 60, 110, 94), (0, 0, 20, 20)]
    sem = None
    if cfg_name == M2F_PAN:
        ys, xs = np.mgrid[0:S, 0:S]
        sem_np = np.where(ys < 64, 2, 3)  # stuff: sky (2) above, ground (3) below
        for k, (a, b, c, d) in enumerate(rects):
            sem_np[b:d, a:c] = k % 2
        sem_np[100:, :] = 255  # void
        sem = torch.from_numpy(sem_np)[None]
    full = _sample(rects, [0, 1, 0], (S, S), windows=[win], sem=sem)
    torch.manual_seed(1)
    got = model.loss(img, [full])

    # the reference: the host's own loss on the hand-cut window and hand-cropped targets
    cut = img[:, :, y1:y1 + 64, x1:x1 + 64].clone()
    crop_rects = [(a - x1, b - y1, c - x1, d - y1) for a, b, c, d in rects[:2]]
    ref_sample = _sample(crop_rects, [0, 1], (64, 64),
                         sem=None if sem is None else sem[:, y1:y1 + 64, x1:x1 + 64].clone())
    ref_sample.ignored_instances = _rects_to_instances([], [], 64, 64)
    torch.manual_seed(1)
    want = host.loss(model, cut, [ref_sample])
    assert set(got) == set(want)
    for k in want:
        a, b = got[k], want[k]
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=k)
    _finite_total(got).backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('cfg_name', [MRCNN, M2F])
def test_window_without_instances_is_a_negative_sample(cfg_name):
    model = _build(cfg_name)
    img = torch.randn(2, 3, S, S, generator=torch.Generator().manual_seed(1))
    # image 0: both windows hold nothing; image 1: windows of another size, one holds a box
    samples = [_sample([(100, 100, 120, 120)], [1], (S, S), windows=[(0, 0, 4, 4), (0, 4, 4, 4)]),
               # + a sliver of (44, 60, 84, 100) in window 2: 80 of 1600 px, an ignore region
               _sample([(10, 10, 40, 40), (44, 60, 84, 100)], [0, 1], (S, S),
                       windows=[(0, 0, 3, 3), (5, 5, 3, 3)])]
    losses = model.loss(img, samples)
    _finite_total(losses).backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_window_shapes_reach_a_backbone_that_takes_them():
    """A backbone whose forward_tokens takes ``window_shapes`` (ViTDet partitions inside each
    Win-Win window) gets each window's (h, w); the loss is unchanged otherwise."""
    model = _build(MRCNN)
    seen = []
    plain = model.backbone.forward_tokens

    def forward_tokens(tokens, pos, grid_size=None, window_shapes=None):
        seen.append(window_shapes)
        return plain(tokens, pos, grid_size, window_shapes=window_shapes)

    model.backbone.forward_tokens = forward_tokens
    img = torch.randn(1, 3, S, S)
    model.loss(img, [_sample([(10, 10, 40, 40)], [0], (S, S), windows=[(0, 0, 4, 4),
                                                                       (4, 2, 3, 3)])])
    assert seen == [[(4, 4), (3, 3)]]


def test_missing_windows_and_wrong_patch_size_are_clear_errors():
    model = _build(MRCNN)
    img = torch.randn(1, 3, S, S)
    with pytest.raises(KeyError, match="WinWinWindows.*WinWinPackDetInputs"):
        model.loss(img, [_sample([(10, 10, 40, 40)], [0], (S, S))])
    bad = _sample([(10, 10, 40, 40)], [0], (S, S), windows=[(0, 0, 2, 2)], patch=14)
    with pytest.raises(ValueError, match='patch_size=16'):
        model.loss(img, [bad])
    staged = _sample([(10, 10, 40, 40)], [0], (S, S), windows=[(0, 0, 2, 2)])
    staged.set_metainfo(dict(winwin_window_stages=[[(0, 0, 2, 2)], [(0, 0, 3, 3)]]))
    with pytest.raises(ValueError, match='WinWinTwoStageDetector trains on one window size'):
        model.loss(img, [staged])  # WinWinWindows(progressive_sizes=...) is for segmentation
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(CFG, MRCNN)).model
    cfg['border_rule'] = dict(dropped='background')
    with pytest.raises(ValueError, match="dropped must be 'ignore'"):
        MODELS.build(cfg)


WINWIN_CONFIGS = sorted(glob.glob(osp.join(CFG, 'winwin-*.py')))


@pytest.mark.parametrize('path', WINWIN_CONFIGS, ids=[osp.basename(p) for p in WINWIN_CONFIGS])
def test_winwin_configs_are_twins_of_their_full_resolution_configs(path):
    """A Win-Win config = its twin + the model type, the border rule, the window transform
    and packer; the window settings match the name (winwin-NxS) and the backbone."""
    name = osp.basename(path)
    n, s = (int(v) for v in re.match(r'winwin-(\d+)x(\d+)_', name).groups())
    twin = Config.fromfile(osp.join(CFG, name.split('_', 1)[1]))
    cfg = Config.fromfile(path)
    assert cfg.model.type == {'MaskRCNN': 'WinWinTwoStageDetector',
                              'Mask2Former': 'WinWinMask2Former'}[twin.model.type]
    assert cfg.model.border_rule == dict(min_visible_area=16, min_visible_fraction=0.25,
                                         dropped='ignore', recompute_bbox=True)

    def pipeline(c):
        d = c.train_dataloader.dataset
        return d.get('dataset', d).pipeline

    ours, theirs = pipeline(cfg), pipeline(twin)
    crop = [t for t in theirs if t['type'] == 'RandomCrop']
    assert crop[0]['recompute_bbox'] is True  # the window crop does as the image crop
    assert [t['type'] for t in ours[-2:]] == ['WinWinWindows', 'WinWinPackDetInputs']
    assert theirs[-1]['type'] == 'PackDetInputs' and ours[:-2] == theirs[:-1]
    win = ours[-2]
    assert (win['num_windows'], win['window_size']) == (n, s)
    assert win['patch_size'] == 16  # stated in the config: the backbone's
    assert cfg.test_dataloader == twin.test_dataloader and cfg.model.test_cfg == twin.model.test_cfg
    assert cfg.model.backbone == twin.model.backbone


# ------------------------------------------------------------------ through the tools
def _train_and_test(cfg_name, cwd, metric_keys):
    cfg = osp.join(CFG, cfg_name)
    wd = str(cwd / ('wd_' + cfg_name[:30]))
    out = run_tool_in_process(
        [osp.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', wd, '--cfg-options',
         'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
         'default_hooks.checkpoint.max_keep_ckpts=2'], cwd, wd)
    lines = [ln for ln in out.splitlines() if 'Iter(train)' in ln]
    assert len(lines) == 2 and 'Iter(train) [2/2]' in lines[-1], out[-3000:]
    for ln in lines:
        values = [float(v) for v in re.findall(r'loss\S*: (\S+)', ln)]
        assert values and all(math.isfinite(v) for v in values), ln
    from mmwinwin.utils.checkpoint import load_checkpoint
    w1, w2 = (load_checkpoint(osp.join(wd, f'iter_{i}.pth'))['state_dict'] for i in (1, 2))
    moved = [k for k in w1 if k.startswith('backbone.') and not torch.equal(w1[k], w2[k])]
    assert len(moved) > 10, 'the backbone did not train'
    out = run_tool_in_process(
        [osp.join(ROOT, 'tools', 'test.py'), cfg, osp.join(wd, 'iter_2.pth'), '--work-dir', wd],
        cwd, wd)
    line = [ln for ln in out.splitlines() if 'Iter(test) [1/1]' in ln and metric_keys[0] in ln]
    assert line, out[-3000:]
    print(line[-1])
    for k in metric_keys:
        assert k in line[-1]
    return out


def test_winwin_mask_rcnn_train_test(coco_dir):
    _train_and_test(MRCNN, coco_dir, ['coco/bbox_mAP', 'coco/segm_mAP'])


def test_winwin_mask2former_instance_train_test(coco_dir):
    _train_and_test(M2F, coco_dir, ['coco/bbox_mAP', 'coco/segm_mAP'])


def test_winwin_mask2former_panoptic_train_test(coco_dir):
    out = _train_and_test(M2F_PAN, coco_dir, ['coco_panoptic/PQ', 'coco_panoptic/PQ_th',
                                              'coco_panoptic/PQ_st'])
    assert 'Panoptic evaluation' in out
