"""tools/train.py and tools/test.py with the tiny Win-Win configs on generated data."""
import os.path as osp
import runpy
import sys

import pytest

from mmwinwin.datasets.synthetic import generate_ade20k, generate_nyu

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'winwin')


def _run(tool, args, capsys=None):
    argv = sys.argv
    sys.argv = [tool] + [str(a) for a in args]
    try:
        runpy.run_path(osp.join(ROOT, 'tools', tool), run_name='__main__')
    finally:
        sys.argv = argv


def _opts(root, iters=2):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=1', f'param_scheduler.0.end={iters}']


# pixels='windows': the packer packs only the windows' pixels (a canvas); the preprocessor
# then pads to the patch size, not to the whole image's size; a canvas holds no whole image
# for the configs' full-image phase, so it is switched off
CANVAS_OPTS = ['train_dataloader.dataset.pipeline.4.pixels=windows',
               'model.data_preprocessor.size=None', 'model.data_preprocessor.size_divisor=16',
               'model.full_image_phase=None']


@pytest.mark.parametrize('pixels', ['image', 'windows'])
def test_train_winwin_segmentation_then_test(tmp_path, capsys, pixels):
    data = generate_ade20k(str(tmp_path / 'ade'), num_train=4, num_val=2, img_size=(128, 256))
    work = tmp_path / 'work'
    cfg = osp.join(CFG, 'winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py')
    _run('train.py', [cfg, '--work-dir', work] + _opts(data) +
         (CANVAS_OPTS if pixels == 'windows' else []))
    ckpt = work / 'iter_2.pth'
    assert ckpt.exists()
    out = capsys.readouterr()
    log = out.out + out.err
    assert 'decode.loss_ce' in log  # window-token training ran
    dumped = open(work / osp.basename(cfg)).read()
    assert (f"pixels='{pixels}'" in dumped) == (pixels == 'windows')
    assert 'mIoU' in log  # full-resolution evaluation
    # test.py reads the checkpoint back and evaluates whole 128x256 images
    _run('test.py', [cfg, ckpt, '--work-dir', tmp_path / 'test'] + _opts(data))
    out = capsys.readouterr()
    assert 'mIoU' in out.out + out.err


def test_train_winwin_depth(tmp_path, capsys):
    data = generate_nyu(str(tmp_path / 'nyu'), num_train=4, num_val=2, img_size=(128, 192))
    work = tmp_path / 'work'
    cfg = osp.join(CFG, 'winwin-2x4_vitdepth_rope-vit-tiny_1xb2-20i_synthetic-nyu-128x192.py')
    _run('train.py', [cfg, '--work-dir', work] + _opts(data))
    assert (work / 'iter_2.pth').exists()
    out = capsys.readouterr()
    log = out.out + out.err
    assert 'decode.loss_silog' in log
    for metric in ('abs_rel', 'rmse', 'd1'):
        assert metric in log


def test_nyu_generator_layout(tmp_path):
    import cv2
    import numpy as np
    root = generate_nyu(str(tmp_path / 'nyu'), num_train=2, num_val=1, img_size=(64, 96), seed=3)
    img = cv2.imread(osp.join(root, 'images', 'train', 'bedroom_00001.jpg'))
    depth = cv2.imread(osp.join(root, 'annotations', 'train', 'bedroom_00001.png'),
                       cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 96, 3) and depth.dtype == np.uint16 and depth.shape == (64, 96)
    assert 900 <= depth.min() and depth.max() <= 10000
    # deeper is hazier (brighter towards the haze colour): depth is learnable from the image
    gray = img.mean(2)
    assert np.corrcoef(gray.ravel(), depth.ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match='too small'):
        generate_nyu(str(tmp_path / 'x'), img_size=(16, 16))


def test_winwin_configs_have_their_baselines_and_pack_the_windows():
    import glob

    from mmengine.config import Config

    from mmseg.registry import TRANSFORMS

    from mmwinwin.datasets.winwin import WINWIN_META_KEYS
    import re
    files = sorted(glob.glob(osp.join(CFG, 'winwin-*.py')))
    assert files
    for f in files:
        cfg = Config.fromfile(f)
        assert cfg.model.type in ('WinWinEncoderDecoder', 'WinWinDepthEstimator')
        assert cfg.model.test_cfg.mode == 'whole'
        pipe = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
        assert pipe[-2:] == ['WinWinWindows', 'WinWinPackSegInputs'], f
        # the name's winwin-{N}x{S} is what the window transform does
        n, s = map(int, re.match(r'winwin-(\d+)x(\d+)_', osp.basename(f)).groups())
        windows = cfg.train_dataloader.dataset.pipeline[-2]
        assert (windows['num_windows'], windows['window_size']) == (n, s), f
        packer = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[-1])
        assert set(WINWIN_META_KEYS) <= set(packer.meta_keys)
        # baselines beside it (same head, backbone, dataset and size): full resolution and
        # a low-res crop
        dataset_size = osp.basename(f).rsplit('_', 1)[1]
        head_backbone = '_'.join(osp.basename(f).split('_')[1:3]) + '_'
        siblings = sorted(osp.basename(g) for g in glob.glob(osp.join(CFG, '*' + dataset_size))
                          if osp.basename(g).startswith(head_backbone))
        assert len(siblings) == 2, (f, siblings)
        assert '_crop' in siblings[0] and '_fullres_' in siblings[1], siblings
