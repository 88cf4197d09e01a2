"""The full-image phase of the Win-Win detectors (Mask R-CNN, Mask2Former panoptic).

Before ``begin`` the loss is the window loss (nothing outside the windows changes it); from
``begin`` on it is the host mmdet model's own loss (``MaskRCNN`` / ``Mask2Former`` built from
the same config, the same weights) on the same whole-image batch, with the targets padded to
the batch input as mmdet's ``pad_mask`` / ``pad_seg`` would (the Win-Win configs set
``pad_mask=False``). Canvas inputs and ``scale`` are clear errors; ``FullImagePhaseHook``
drives a detector. (The hook through a real Runner: tests/test_winwin_full_image_phase.py.)
"""
import copy
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import assert_same_losses
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'vitdet')
MRCNN = 'winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py'
M2F_PAN = 'winwin-2x4_mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py'
HOST = {MRCNN: 'MaskRCNN', M2F_PAN: 'Mask2Former'}
#: the full-resolution twin of each tiny Win-Win config (its train_cfg samples per image)
TWIN = {MRCNN: 'mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py',
        M2F_PAN: 'mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py'}
S = 128
WINS = [[(0, 0, 4, 4)], [(4, 4, 4, 4)]]  # tokens of 16 px: image 0 top-left, 1 bottom-right


def _cfg(cfg_name):
    import mmwinwin  # noqa: F401  (registers the modules)
    init_default_scope('mmdet')
    return Config.fromfile(osp.join(CFG, cfg_name))


def _build(cfg_name, **over):
    from mmdet.registry import MODELS
    cfg = _cfg(cfg_name)
    for key, value in over.items():  # replaced, not merged (the configs' own phase)
        cfg.model[key] = value
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train()


def _host(cfg_name, model, train_cfg=None):
    """The host mmdet model of the same config (with ``train_cfg`` in place of the
    config's, if given), with ``model``'s weights."""
    from mmdet.registry import MODELS
    cfg = _cfg(cfg_name)
    cfg.model.type = HOST[cfg_name]
    cfg.model.pop('border_rule')
    cfg.model.pop('full_image_phase')  # Win-Win's own settings
    if train_cfg is not None:
        cfg.model.train_cfg = train_cfg
    host = MODELS.build(cfg.model)
    host.load_state_dict(model.state_dict())
    return host.train()


def _sample(rects, labels, hw, windows, sem=None, batch_hw=(S, S)):
    h, w = hw
    meta = dict(img_shape=hw, pad_shape=batch_hw, batch_input_shape=batch_hw, ori_shape=hw,
                scale_factor=(1.0, 1.0), winwin_windows=windows, winwin_patch_size=16,
                winwin_grid=(batch_hw[0] // 16, batch_hw[1] // 16))
    s = DetDataSample(metainfo=meta)
    masks = np.zeros((len(rects), h, w), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rects):
        masks[k, y1:y2, x1:x2] = 1
    s.gt_instances = InstanceData(
        bboxes=torch.tensor(rects, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long), masks=BitmapMasks(masks, h, w))
    if sem is not None:
        sem = np.where(np.mgrid[0:h, 0:w][0] < h // 2, 2, 3)  # stuff: two classes
        for k, (x1, y1, x2, y2) in enumerate(rects):
            sem[y1:y2, x1:x2] = labels[k]
        s.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return s


def _batch(panoptic, hw1=(S, S)):
    """Two images; objects inside and outside the windows (two of one class in image 1)."""
    img = torch.randn(2, 3, S, S, generator=torch.Generator().manual_seed(0))
    img[1, :, hw1[0]:] = 0  # the preprocessor's padding of a smaller image
    samples = [_sample([(8, 8, 40, 40), (80, 80, 120, 110)], [0, 1], (S, S), WINS[0],
                       sem=panoptic),
               _sample([(70, 70, 90, 90), (96, 70, 124, 92), (10, 10, 50, 40)], [1, 1, 0],
                       hw1, WINS[1], sem=panoptic)]
    return img, samples


def _loss(model, img, samples, seed=1):
    torch.manual_seed(seed)  # the samplers (RoIs, Mask2Former's points) draw at random
    return model.loss(img, copy.deepcopy(samples))


def _total(losses):
    return sum(t.sum() for k, v in losses.items() if 'loss' in k
               for t in (v if isinstance(v, (list, tuple)) else [v]))


@pytest.mark.parametrize('cfg_name', [MRCNN, M2F_PAN])
def test_windows_before_begin_host_loss_from_begin(cfg_name):
    model = _build(cfg_name, full_image_phase=dict(begin=3))
    host = _host(cfg_name, model)
    img, samples = _batch(cfg_name == M2F_PAN)
    outside = torch.ones(2, S, S, dtype=torch.bool)
    for b, wins in enumerate(WINS):
        for t, l, h, w in wins:
            outside[b, t * 16:(t + h) * 16, l * 16:(l + w) * 16] = False
    img2 = torch.where(outside[:, None], torch.randn_like(img) * 3, img)

    model.set_train_progress(2, 10)  # before begin: windows only
    assert not model.in_full_image_phase()
    win = _loss(model, img, samples)
    # nothing outside the windows counts
    assert_same_losses(_loss(model, img2, samples), win, rtol=1e-5, atol=1e-6)
    whole = _loss(host, img, samples)
    assert abs(_total(win).item() - _total(whole).item()) > 1e-3

    model.set_train_progress(3, 10)  # from begin on: the host's whole-image loss
    assert model.in_full_image_phase()
    got = _loss(model, img, samples)
    assert_same_losses(got, whole, rtol=1e-5, atol=1e-6)
    assert_same_losses(_loss(model, img2, samples), _loss(host, img2, samples), rtol=1e-5,
                       atol=1e-6)
    _total(got).backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('cfg_name', [MRCNN, M2F_PAN])
def test_phase_train_cfg_samples_as_the_full_resolution_twin(cfg_name):
    """``full_image_phase.train_cfg``: a whole-image step's loss equals the host mmdet model
    built with that train_cfg (the full-resolution twin config's: its RPN and RoI samplers,
    proposals, Mask2Former's points per mask), the same weights and batch; the window steps
    before and after it keep the Win-Win config's per-window train_cfg (the same loss as a
    model without the option)."""
    twin = _cfg(TWIN[cfg_name]).model.train_cfg
    model = _build(cfg_name, full_image_phase=dict(begin=3, train_cfg=twin))
    plain = _build(cfg_name, full_image_phase=dict(begin=3))  # torch seed 0: same weights
    host = _host(cfg_name, model, train_cfg=twin)
    img, samples = _batch(cfg_name == M2F_PAN)
    for m in (model, plain):
        m.set_train_progress(2, 10)
    before = _loss(model, img, samples)
    assert_same_losses(before, _loss(plain, img, samples), rtol=0, atol=0)
    for m in (model, plain):
        m.set_train_progress(3, 10)
    got = _loss(model, img, samples)
    assert_same_losses(got, _loss(host, img, samples), rtol=1e-5, atol=1e-6)
    # not the window config's sampling on whole images (the phase without the option)
    assert abs(_total(got).item() - _total(_loss(plain, img, samples)).item()) > 1e-3
    model.set_train_progress(2, 10)  # a window step again: the window settings are back
    assert_same_losses(_loss(model, img, samples), before, rtol=0, atol=0)
    head = model.roi_head if cfg_name == MRCNN else model.panoptic_head
    window_cfg = _cfg(cfg_name).model.train_cfg
    assert head.train_cfg == (window_cfg.rcnn if cfg_name == MRCNN else window_cfg)


@pytest.mark.parametrize('cfg_name', [MRCNN, M2F_PAN])
def test_phase_on_part_of_the_batch(cfg_name):
    """``full_image_phase.batch_fraction``: a whole-image step is the host mmdet model's loss
    (built with the phase's train_cfg) on the first ceil(f * B) images of the batch only; a
    window step still trains on every image's windows."""
    twin = _cfg(TWIN[cfg_name]).model.train_cfg
    model = _build(cfg_name, full_image_phase=dict(begin=3, train_cfg=twin, batch_fraction=0.5))
    plain = _build(cfg_name, full_image_phase=dict(begin=3, train_cfg=twin))
    host = _host(cfg_name, model, train_cfg=twin)
    img, samples = _batch(cfg_name == M2F_PAN)
    for m in (model, plain):
        m.set_train_progress(3, 10)
    got = _loss(model, img, samples)
    assert_same_losses(got, _loss(host, img[:1], samples[:1]), rtol=1e-5, atol=1e-6)
    assert abs(_total(got).item() - _total(_loss(plain, img, samples)).item()) > 1e-3
    for m in (model, plain):
        m.set_train_progress(2, 10)
    assert_same_losses(_loss(model, img, samples), _loss(plain, img, samples), rtol=0, atol=0)


def test_phase_train_cfg_errors():
    from mmdet.registry import MODELS
    from mmwinwin.models.winwin.full_image_phase import check_full_image_phase
    cfg = _cfg(MRCNN)
    cfg.model.full_image_phase = dict(begin=2, train_cfg=dict(rpn=cfg.model.train_cfg.rpn))
    with pytest.raises(ValueError, match="train_cfg has no 'rcnn'.*model.train_cfg"):
        MODELS.build(cfg.model)
    with pytest.raises(TypeError, match='train_cfg must be a dict'):
        check_full_image_phase(dict(begin=2, train_cfg=[1]), heads_train_cfg=True)
    # the segmentors, depth and flow estimators sample nothing per image: refused by name
    with pytest.raises(ValueError, match='for the Win-Win detectors.*Drop full_image_phase'):
        check_full_image_phase(dict(begin=2, train_cfg=dict(num_points=4)))


def test_phase_pads_targets_to_the_batch_input_as_pad_mask_and_pad_seg():
    """An image smaller than the batch input (pad_mask=False, as the Win-Win configs): the
    phase equals the host's loss on the targets mmdet's preprocessor pads (pad_mask=True,
    pad_seg=True); the host on unpadded targets cannot even stack things and stuff."""
    model = _build(M2F_PAN, full_image_phase=dict(begin=0))
    host = _host(M2F_PAN, model)
    assert model.data_preprocessor.pad_mask is False
    img, samples = _batch(True, hw1=(96, S))
    for s in samples:  # the preprocessor's pad_seg=True (the Win-Win config keeps it)
        model.data_preprocessor.pad_gt_sem_seg([s])
    model.set_train_progress(0, 4)
    got = _loss(model, img, samples)
    with pytest.raises(RuntimeError):
        _loss(host, img, samples)
    padded = copy.deepcopy(samples)
    model.data_preprocessor.pad_gt_masks(padded)
    assert_same_losses(got, _loss(host, img, padded), rtol=1e-5, atol=1e-6)


def test_canvas_inputs_and_scale_are_named_errors():
    from mmdet.registry import MODELS
    model = _build(MRCNN, full_image_phase=dict(begin_fraction=5 / 6))
    s = DetDataSample(metainfo=dict(winwin_canvas=[(0, 0)], winwin_grid=(8, 8),
                                    winwin_windows=[(0, 0, 4, 4)], winwin_patch_size=16))
    batch = dict(inputs=[torch.zeros(3, 64, 64)], data_samples=[s])
    with pytest.raises(ValueError, match=r"full_image_phase.*pixels='windows'.*Pack whole"):
        model.train_step(batch, optim_wrapper=None)  # before any padding or optimisation
    cfg = _cfg(M2F_PAN)
    cfg.model.full_image_phase = dict(begin=2, scale=0.5)
    with pytest.raises(ValueError, match='scale.*Drop full_image_phase.scale'):
        MODELS.build(cfg.model)
    cfg.model.full_image_phase = dict(begin=2, bgin=3)
    with pytest.raises(Exception, match='bgin'):
        MODELS.build(cfg.model)


def test_hook_drives_a_detector():
    from mmwinwin.engine.hooks import FullImagePhaseHook
    model = _build(M2F_PAN, full_image_phase=dict(begin_fraction=5 / 6))
    hook = FullImagePhaseHook()
    runner = SimpleNamespace(model=model, iter=0, max_iters=12)
    hook.before_train(runner)
    seen = []
    for it in range(12):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append(model.in_full_image_phase())
    assert [i for i, v in enumerate(seen) if v] == [10, 11]


def test_detection_configs_ship_the_recipe():
    """Every Win-Win detection config (issue 23: a family's configs default to its best
    measured recipe; for detection (r) sampling as full resolution, (v), docs/detection.md)
    trains on windows, then on whole images (packed whole: the phase needs them) for the last
    third with the phase's own learning rate, its whole-image steps under the full-resolution
    twin config's train_cfg (the panoptic ones on half of each batch, (x)): every scheduler
    of the windows part ends by the phase's first iteration, and one cosine restart at the
    optimizer's lr anneals it to 0 over the phase. The
    epoch-based Mask R-CNN twin begins it at epoch 17 of 25, an epoch's first iteration for any
    epoch length, where its by-epoch restart (converted to iterations) begins too."""
    import glob

    from mmwinwin.models.winwin.full_image_phase import full_image_phase_begin
    paths = sorted(glob.glob(osp.join(CFG, 'winwin-*.py')))
    assert len(paths) == 6
    for path in paths:
        cfg = Config.fromfile(path)
        twin = Config.fromfile(osp.join(CFG, osp.basename(path).split('_', 1)[1]))
        phase = dict(cfg.model.full_image_phase)
        assert phase.pop('train_cfg') == twin.model.train_cfg, path
        assert cfg.model.type in ('WinWinTwoStageDetector', 'WinWinMask2Former'), path
        dataset = cfg.train_dataloader.dataset
        pipeline = dataset.get('pipeline') or dataset.dataset.pipeline
        assert dict(pipeline[-1]) == dict(type='WinWinPackDetInputs'), path  # whole images
        sched = [dict(s) for s in cfg.param_scheduler]
        restart = [s for s in sched if s['type'] == 'CosineRestartLR']
        windows = [s for s in sched if s['type'] != 'CosineRestartLR']
        if cfg.train_cfg.type == 'EpochBasedTrainLoop':
            epochs = cfg.train_cfg.max_epochs
            assert phase == {'begin_fraction': 17 / 25}, path
            assert epochs == 25
            assert restart == [dict(type='CosineRestartLR', periods=[8], restart_weights=[1.0],
                                    eta_min=0.0, by_epoch=True, begin=17, end=25,
                                    convert_to_iter_based=True)], path
            for length in (1, 7, 29, 1000, 29316):  # iterations per epoch
                assert full_image_phase_begin(cfg.model.full_image_phase,
                                              epochs * length) == 17 * length
            assert all(not s['by_epoch'] and s['end'] <= 500 for s in windows), path
            continue
        iters = cfg.train_cfg.max_iters
        begin = round(2 / 3 * iters) if iters > 2 else 1
        # panoptic Mask2Former: the phase on half of each batch, (x)
        part = {'batch_fraction': 0.5} if 'panoptic' in path else {}
        assert phase == {'begin_fraction': 2 / 3, **part}, path
        assert full_image_phase_begin(cfg.model.full_image_phase, iters) == begin
        assert restart == [dict(type='CosineRestartLR', periods=[iters - begin],
                                restart_weights=[1.0], eta_min=0.0, by_epoch=False,
                                begin=begin, end=iters)], path
        assert windows and all(s['end'] <= begin and not s['by_epoch'] for s in windows), path


def test_epoch_based_mask_rcnn_schedule_restarts_at_the_phase():
    """The ViT-B Mask R-CNN twin's schedulers, built by mmengine's registry as its Runner does
    for an epoch of L iterations and stepped once per iteration: warm-up, then the base
    learning rate until the phase's first iteration (epoch 17), where the restart begins at the
    base rate and anneals it to 0 by the end of epoch 25."""
    import math

    from mmengine.registry import PARAM_SCHEDULERS
    cfg = _cfg('winwin-2x28_mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py')
    base, length = 1e-4, 60
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    schedulers = [PARAM_SCHEDULERS.build({k: v for k, v in s.items() if k != '_scope_'},
                                         default_args=dict(optimizer=optimizer,
                                                           epoch_length=length))
                  for s in cfg.param_scheduler]
    lrs = []
    for _ in range(25 * length):
        lrs.append(optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    begin = 17 * length
    assert lrs[0] == pytest.approx(0.067 * base)
    assert all(lr == pytest.approx(base) for lr in lrs[500:begin])
    for i in range(begin, 25 * length):  # cosine from the base rate to 0 over the phase
        t = (i - begin) / (25 * length - begin)
        assert lrs[i] == pytest.approx(base * (1 + math.cos(math.pi * t)) / 2, abs=1e-12), i
