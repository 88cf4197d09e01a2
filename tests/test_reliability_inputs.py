"""Issue 10 (reliability): bad inputs give a clear error naming the file / value and the
fix, instead of a silent wrong result or a crash deep inside a library.

Each test builds the bad input in the format a user would have it (files in tmp_path in
the dataset's own layout, the registered modules of the tiny configs) and checks the
error message.
"""
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement, PixelData
from mmseg.structures import SegDataSample

import mmwinwin  # noqa: F401  (registers the modules)
from mmwinwin.registry import MODELS, TRANSFORMS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_CFG = osp.join(ROOT, 'configs', 'winwin',
                   'winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py')
DEPTH_CFG = osp.join(ROOT, 'configs', 'winwin',
                     'winwin-2x4_vitdepth_rope-vit-tiny_1xb2-20i_synthetic-nyu-128x192.py')
FLOW_CFG = osp.join(ROOT, 'configs', 'winwin_flow',
                    'winwin-2x4_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py')


def _model(cfg_path: str):
    torch.manual_seed(0)
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _seg_sample(h: int, w: int, meta: dict, label: torch.Tensor | None = None):
    s = SegDataSample()
    s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), **meta))
    s.gt_sem_seg = PixelData(data=label if label is not None
                             else torch.zeros(1, h, w, dtype=torch.long))
    return s


def _run_tool(tool: str, args: list) -> None:
    argv = sys.argv
    sys.argv = [tool] + [str(a) for a in args]
    try:
        runpy.run_path(osp.join(ROOT, 'tools', tool), run_name='__main__')
    finally:
        sys.argv = argv


# --------------------------------------------------------------------------- 1. patch size
def test_patch_size_mismatch_segmentation_through_train_py(tmp_path):
    """WinWinWindows(patch_size=32) before a patch-16 backbone: the first batch raises,
    naming both patch sizes and the fix (today it trains on the top-left quarter)."""
    from mmwinwin.datasets.synthetic import generate_ade20k
    data = generate_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=1, img_size=(128, 256))
    cfg = Config.fromfile(SEG_CFG)
    idx = [t['type'] for t in cfg.train_dataloader.dataset.pipeline].index('WinWinWindows')
    opts = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    opts += [f'train_dataloader.dataset.pipeline.{idx}.patch_size=32',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2']
    with pytest.raises(ValueError, match=r'patch_size=32.*patch size 16.*patch_size=16'):
        _run_tool('train.py', [SEG_CFG, '--work-dir', tmp_path / 'work', '--cfg-options'] + opts)


@pytest.mark.parametrize('cfg_path', [SEG_CFG, DEPTH_CFG])
def test_patch_size_mismatch_segmentor_and_depth(cfg_path):
    model = _model(cfg_path).train()
    assert model.backbone.patch_size == 16
    for recorded in (8, 14, 32):
        meta = dict(winwin_windows=[(0, 0, 2, 2), (2, 2, 2, 2)], winwin_grid=(4, 8),
                    winwin_patch_size=recorded, img_path='a.jpg')
        sample = _seg_sample(64, 128, meta)
        if 'depth' in cfg_path:
            sample.gt_depth_map = PixelData(data=torch.ones(1, 64, 128))
        with pytest.raises(ValueError, match=rf'patch_size={recorded} .*patch size 16 \(a.jpg\)'):
            model.loss(torch.zeros(1, 3, 64, 128), [sample])


def test_patch_size_mismatch_flow():
    model = _model(FLOW_CFG).train()
    p = model.net.patch_size
    s = BaseDataElement(metainfo=dict(img_shape=(64, 64), winwin_patch_size=2 * p,
                                      img1_path='f1.png'))
    s.gt_flow = torch.zeros(2, 64, 64)
    s.gt_valid = torch.ones(64, 64, dtype=torch.bool)
    with pytest.raises(ValueError, match=rf'patch_size={2 * p} .*patch size {p} \(f1.png\)'):
        model.loss(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64), [s])
    # PackFlowInputs carries the recorded patch size to the model
    pack = TRANSFORMS.build(dict(type='PackFlowInputs'))
    out = pack(dict(img1=np.zeros((8, 8, 3), np.uint8), img2=np.zeros((8, 8, 3), np.uint8),
                    winwin_patch_size=32))
    assert out['data_samples'].metainfo['winwin_patch_size'] == 32


# ------------------------------------------------------------------- 2. non-finite input
def _nan_image(value: float, c: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    img = torch.rand(c, h, w) * 255
    img[1, 5, 7] = value
    return img


def test_non_finite_input():
    """One NaN / inf pixel: the data preprocessors of the configs (segmentation, detection,
    flow) name the image and how many values, instead of predicting NaN -> class 0."""
    seg = _model(SEG_CFG).data_preprocessor
    assert type(seg).__name__ == 'CheckedSegDataPreProcessor'
    sample = _seg_sample(32, 32, dict(img_path='data/x/bad.png'))
    values = (float('nan'), float('inf'), -float('inf'))
    for training, value in [(t, v) for t in (True, False) for v in values]:
        with pytest.raises(ValueError, match=r'bad\.png has 1 non-finite values \(NaN or inf\)'):
            seg(dict(inputs=[torch.rand(3, 32, 32), _nan_image(value)],
                     data_samples=[_seg_sample(32, 32, dict(img_path='ok.png')), sample]),
                training)
    # finite float images pass unchanged (the host's normalisation)
    out = seg(dict(inputs=[torch.full((3, 32, 32), 100.0)], data_samples=[sample]), True)
    assert torch.isfinite(out['inputs']).all()

    from mmdet.structures import DetDataSample
    init_default_scope('mmdet')
    det_cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'vitdet', 'mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py'))
    det = MODELS.build(det_cfg.model.data_preprocessor)
    assert type(det).__name__ == 'CheckedDetDataPreprocessor'
    ds = DetDataSample(metainfo=dict(img_path='coco/000001.jpg', img_shape=(32, 32)))
    flow = _model(FLOW_CFG).data_preprocessor
    fs = BaseDataElement(metainfo=dict(img1_path='sintel/frame_0001.png'))
    for value in values:
        with pytest.raises(ValueError, match=r'000001\.jpg has 1 non-finite values'):
            det(dict(inputs=[_nan_image(value)], data_samples=[ds]), False)
        pair = torch.stack([torch.rand(3, 32, 32) * 255, _nan_image(value)])
        with pytest.raises(ValueError, match=r'frame_0001\.png has 1 non-finite values'):
            flow(dict(inputs=[pair], data_samples=[fs]), True)


def test_non_finite_tokens_in_clustering():
    from mmwinwin.layers.expedite.partitioned import cluster_partitions
    from mmwinwin.layers.expedite.plugin import ExpediteSettings, cluster_sequence
    settings = ExpediteSettings(alpha=1, cluster_grid=(2, 2), k=4, window=3)
    x = torch.randn(2, 1 + 16, 8)
    cluster_sequence(x, 1, (4, 4), settings)  # finite: fine
    x[1, 3, 2] = float('nan')
    with pytest.raises(ValueError, match=r'1 non-finite values \(NaN or inf\) of 256'):
        cluster_sequence(x, 1, (4, 4), settings)
    grid = torch.randn(1, 4, 4, 8)
    grid[0, 0, 0, 0] = float('inf')
    with pytest.raises(ValueError, match='per partition.*1 non-finite'):
        cluster_partitions(grid, 4, settings)
