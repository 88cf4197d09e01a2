"""Issue 10 (reliability): bad inputs give a clear error naming the file / value and the
fix, instead of a silent wrong result or a crash deep inside a library.

Each test builds the bad input in the format a user would have it (files in tmp_path in
the dataset's own layout, the registered modules of the tiny configs) and checks the
error message.
"""
import os
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
    if getattr(model, 'full_image_phase', None) is not None:
        # the configs' recipe ends with whole images; these checks are of the window steps
        # (iteration 0), which a runner's FullImagePhaseHook would announce
        model.set_train_progress(0, cfg.train_cfg.max_iters)
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
    """WinWinWindows(patch_size=32) before a patch-16 backbone: the first training step
    stops, naming both patch sizes and the fix (before: it trained on the top-left
    quarter)."""
    from mmwinwin.datasets.synthetic import generate_ade20k
    data = generate_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=1, img_size=(128, 256))
    cfg = Config.fromfile(SEG_CFG)
    idx = [t['type'] for t in cfg.train_dataloader.dataset.pipeline].index('WinWinWindows')
    opts = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    opts += [f'train_dataloader.dataset.pipeline.{idx}.patch_size=32',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2']
    with pytest.raises(ValueError, match=r'sampled with patch_size=32 but the backbone has '
                                         r'patch size 16.*patch_size=16'):
        _run_tool('train.py', [SEG_CFG, '--work-dir', tmp_path / 'work', '--cfg-options'] + opts)
    assert not osp.exists(tmp_path / 'work' / 'iter_2.pth')


def _window_configs():
    """Every Win-Win config (the ``winwin-*`` files; their baselines have no windows)."""
    import glob
    return sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', 'winwin-*.py'),
                                       recursive=True) if '/_base_/' not in p)


def test_window_patch_size_is_in_every_config_and_is_the_backbones():
    """Every config that samples windows states the transform's patch_size, and it is the
    patch size of the backbone the config builds (built on the meta device: no weights), so
    mmseg's and mmdet's own tools run the configs as they are; a transform without a patch
    size is refused when it is built, naming the fix."""
    import torch
    from mmengine.registry import MODELS, init_default_scope

    import mmwinwin  # noqa: F401
    checked = 0
    for path in _window_configs():
        cfg = Config.fromfile(path, import_custom_modules=False)
        dataset = cfg.train_dataloader.dataset
        while 'pipeline' not in dataset:
            dataset = dataset.dataset
        windows = [t for t in dataset.pipeline if t['type'] == 'WinWinWindows']
        assert windows, path
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = cfg.model
        trunk_cfg = model.get('backbone', None)
        with torch.device('meta'):
            if trunk_cfg is not None:
                trunk = MODELS.build(trunk_cfg)
            else:  # flow: the estimator's network
                from mmwinwin.layers.flow import CroCoFlowNet
                trunk = CroCoFlowNet(**model.net)
        patch = trunk.patch_size[0] if isinstance(trunk.patch_size, (tuple, list)) \
            else trunk.patch_size
        assert windows[0]['patch_size'] == int(patch), path
        checked += 1
    assert checked >= 25
    with pytest.raises(ValueError, match=r"needs patch_size, the backbone's patch size.*"
                                         r"patch_size=16"):
        TRANSFORMS.build(dict(type='WinWinWindows', window_size=2))


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
    s = BaseDataElement(metainfo=dict(img_shape=(128, 128), winwin_patch_size=2 * p,
                                      img1_path='f1.png'))
    s.gt_flow = torch.zeros(2, 128, 128)
    s.gt_valid = torch.ones(128, 128, dtype=torch.bool)
    with pytest.raises(ValueError, match=rf'patch_size={2 * p} .*patch size {p} \(f1.png\)'):
        model.loss(torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128), [s])
    s.set_metainfo(dict(winwin_patch_size=p, winwin_windows=[(0, 0, 2, 2), (4, 4, 2, 2)]))
    # agreeing: trains (on the windows the pipeline's WinWinWindows would record)
    assert 'loss_flow' in model.loss(torch.zeros(1, 3, 128, 128), torch.zeros(1, 3, 128, 128), [s])
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


# ------------------------------------------------- 3. clear errors instead of deep crashes
def _ade_dataset(root: str, split: str = 'training'):
    """The tiny Win-Win config's training dataset (real pipeline) on ``root``; built without
    a Runner, so the window transform is given the backbone's patch size here."""
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    full = Config.fromfile(SEG_CFG)
    cfg = full.train_dataloader.dataset
    cfg.data_root = root
    for t in cfg.pipeline:
        if t['type'] == 'WinWinWindows':
            t['patch_size'] = full.model.backbone.patch_size
    return DATASETS.build(cfg)


def _ade(tmp_path, **kw):
    from mmwinwin.datasets.synthetic import generate_ade20k
    return generate_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=1,
                           img_size=(128, 256), **kw)


def test_corrupt_annotation_png(tmp_path):
    root = _ade(tmp_path)
    ds = _ade_dataset(root)
    ann = ds.get_data_info(0)['seg_map_path']
    with open(ann, 'wb') as f:  # a truncated PNG: the signature, then garbage
        f.write(b'\x89PNG\r\n\x1a\n' + b'\x00garbage' * 4)
    with pytest.raises(ValueError, match=rf'Annotation file {ann} could not be decoded.*'
                                         r'corrupt or not an image'):
        ds[0]


def test_empty_data_root(tmp_path):
    root = tmp_path / 'ade'
    (root / 'images' / 'training').mkdir(parents=True)
    (root / 'annotations' / 'training').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"No images ending in '\.jpg' in .*"
                                                r'images/training.*generate_synthetic\.py'):
        _ade_dataset(str(root))


def test_images_larger_than_preprocessor_size():
    pre = _model(SEG_CFG).data_preprocessor
    assert tuple(pre.size) == (128, 256)
    small = _seg_sample(128, 256, dict(img_path='a.jpg'))
    big = _seg_sample(160, 256, dict(img_path='data/big.jpg'))
    with pytest.raises(ValueError, match=r'data/big\.jpg is 160x256 px, larger than .*'
                                         r'size=\(128, 256\).*RandomCrop'):
        pre(dict(inputs=[torch.zeros(3, 128, 256, dtype=torch.uint8),
                         torch.zeros(3, 160, 256, dtype=torch.uint8)],
                 data_samples=[small, big]), True)
    # at most `size`: padded to it, as before
    out = pre(dict(inputs=[torch.zeros(3, 100, 200, dtype=torch.uint8)],
                   data_samples=[_seg_sample(100, 200, dict(img_path='a.jpg'))]), True)
    assert out['inputs'].shape == (1, 3, 128, 256)


def test_label_value_out_of_range(tmp_path):
    """A label value >= the class count names the annotation file, the value and the
    count (today torch's "Target 39 is out of bounds"); ignore_index 255 stays allowed."""
    import cv2
    from mmengine.dataset import pseudo_collate
    root = _ade(tmp_path)
    ds = _ade_dataset(root)
    model = _model(SEG_CFG).train()
    num_classes = model.decode_head.num_classes
    assert model.data_preprocessor.num_classes == num_classes == 7
    ann = ds.get_data_info(1)['seg_map_path']
    label = cv2.imread(ann, cv2.IMREAD_UNCHANGED)
    label[:4, :4] = 0  # -> 255 (ignored) after reduce_zero_label
    cv2.imwrite(ann, label)
    model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)  # in range: fine
    label[:2, :2] = 40  # -> 39 after reduce_zero_label
    cv2.imwrite(ann, label)
    with pytest.raises(ValueError, match=rf'Label map {ann} .*value\(s\) 39, outside 0\.\.6 for '
                                         r'the 7 classes.*ignore_index 255'):
        model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)


def test_label_value_out_of_range_in_a_plain_segmentor_through_train_py(tmp_path):
    """mmseg's own EncoderDecoder (the baseline configs): tools/train.py's LabelRangeHook hands
    the checked preprocessor the decode head's class count, so the out-of-range value is
    named with its file instead of torch's "Target 39 is out of bounds"."""
    import cv2
    from mmwinwin.datasets.synthetic import generate_ade20k
    plain = osp.join(ROOT, 'configs', 'rope_vit',
                     'upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py')
    assert Config.fromfile(plain).model.type == 'EncoderDecoder'
    data = generate_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=1, img_size=(128, 128))
    ann_dir = osp.join(data, 'annotations', 'training')
    for name in sorted(os.listdir(ann_dir)):
        path = osp.join(ann_dir, name)
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        label[:2, :2] = 40  # -> 39 after reduce_zero_label; the config has 7 classes
        cv2.imwrite(path, label)
    opts = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    opts += ['train_cfg.max_iters=1']
    with pytest.raises(ValueError, match=r'Label map .*ADE_train_\d+\.png.*value\(s\) 39, '
                                         r'outside 0\.\.6 for the 7 classes'):
        _run_tool('train.py', [plain, '--work-dir', tmp_path / 'work', '--cfg-options'] + opts)


def test_zero_pixel_image_tensor():
    model = _model(SEG_CFG)
    for shape in [(3, 0, 32), (3, 32, 0)]:
        with pytest.raises(ValueError, match=r'Image empty\.png has 0 pixels'):
            model.data_preprocessor(dict(inputs=[torch.zeros(shape, dtype=torch.uint8)],
                                         data_samples=[_seg_sample(0, 32, dict(
                                             img_path='empty.png'))]), False)
    with pytest.raises(ValueError, match='empty image batch.*0 pixels'):
        model.backbone(torch.zeros(1, 3, 0, 0))


def test_four_channel_tensor_to_three_channel_segmentor():
    model = _model(SEG_CFG).eval()
    sample = _seg_sample(32, 32, dict(img_path='rgba.png'))
    with pytest.raises(ValueError, match=r'rgba\.png has 4 channels but .* expect 3.*'
                                         r"color_type='color'"):
        model.test_step(dict(inputs=[torch.zeros(4, 32, 32, dtype=torch.uint8)],
                             data_samples=[sample]))


def test_zero_byte_image_file(tmp_path):
    root = _ade(tmp_path)
    ds = _ade_dataset(root)
    img = ds.get_data_info(0)['img_path']
    open(img, 'wb').close()
    with pytest.raises(ValueError, match=rf'Image file {img} is empty \(0 bytes\)'):
        ds[0]
    # the flow pipelines' reader too (it said "Could not read image", a FileNotFoundError)
    from mmwinwin.fileio.flow import read_image_rgb
    with pytest.raises(ValueError, match=r'is empty \(0 bytes\)'):
        read_image_rgb(img)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_image_rgb(img + '.missing')


def test_kitti_flow_16bit_single_channel(tmp_path):
    import cv2
    from mmwinwin.fileio.flow import read_flow, write_kitti_flow
    gray = str(tmp_path / '000000_10.png')
    cv2.imwrite(gray, np.full((6, 8), 2 ** 15 + 64, np.uint16))  # 16-bit, 1 channel
    with pytest.raises(ValueError, match=r'16-bit PNG with 1 channel\(s\).*3 channels'):
        read_flow(gray)
    # a real KITTI flow PNG (16-bit, 3 channels) still reads: u = (R - 2^15) / 64, ...
    flow = np.zeros((6, 8, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -2.25
    valid = np.ones((6, 8), bool)
    valid[0, 0] = False
    ok = str(tmp_path / 'ok.png')
    write_kitti_flow(ok, flow, valid)
    raw = cv2.imread(ok, cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float64)
    got, got_valid = read_flow(ok)
    np.testing.assert_array_equal(got_valid, raw[..., 2] > 0)
    np.testing.assert_allclose(got[got_valid], ((raw[..., :2] - 2 ** 15) / 64)[got_valid])


def test_num_clusters_larger_than_token_grid():
    """Refused like an oversized cluster_grid, with the token grid named (it was clamped)."""
    from mmwinwin.layers.expedite.clustering import cluster_tokens
    from mmwinwin.layers.expedite.plugin import ExpediteSettings
    x = torch.randn(1, 16, 8)
    with pytest.raises(ValueError, match=r'num_clusters=17 .*4x4 = 16 tokens'):
        cluster_tokens(x, (4, 4), num_clusters=17)
    with pytest.raises(ValueError, match=r'cluster grid 5x5 is larger than the token grid 4x4'):
        cluster_tokens(x, (4, 4), cluster_grid=(5, 5))
    with pytest.raises(ValueError, match=r'num_clusters=400 .*4x4 = 16 tokens'):
        ExpediteSettings(num_clusters=400).grid_for((4, 4))
    assert cluster_tokens(x, (4, 4), num_clusters=16).centers.shape == (1, 16, 8)


def test_window_size_bool_refused():
    from mmwinwin.datasets.winwin import WinWinWindows
    from mmwinwin.layers.expedite.plugin import ExpediteSettings
    from mmwinwin.layers.winwin.windows import resolve_window_size
    with pytest.raises(TypeError, match=r'window_size must be an int, got True'):
        WinWinWindows(num_windows=2, window_size=True)
    with pytest.raises(TypeError, match=r'window_size \(each of min, max\) must be an int'):
        WinWinWindows(window_size=(True, 4))
    with pytest.raises(TypeError, match=r'num_windows must be an int, got True'):
        WinWinWindows(num_windows=True, window_size=4)
    with pytest.raises(TypeError, match=r'patch_size must be an int, got True'):
        WinWinWindows(window_size=4, patch_size=True)
    with pytest.raises(TypeError, match=r'window_size must be an int, got True'):
        resolve_window_size(True)
    cfg = Config.fromfile(FLOW_CFG).model
    cfg.windows.margin = True  # flow's window count and size are the transform's (above)
    with pytest.raises(ValueError, match=r'margin must be an int >= 0 tokens, got True'):
        MODELS.build(cfg)
    with pytest.raises(TypeError, match=r'Expedite k must be an int, got True'):
        ExpediteSettings(k=True)
    assert resolve_window_size(4) == 4
    assert WinWinWindows(window_size=4, patch_size=16).window_size == 4
