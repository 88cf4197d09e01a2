"""ADE20K layout: the synthetic generator and the real samples, read by mmseg's loader."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401
from conftest import SHARED_DATA
from mmwinwin.datasets.synthetic import generate_ade20k

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs')]


def _build(dataset_type, root, split='training'):
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dict(
            type=dataset_type, data_root=root, pipeline=PIPELINE,
            data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}')))


def test_generator_layout_is_read_by_mmseg(tmp_path):
    root = generate_ade20k(str(tmp_path), num_train=3, num_val=1, img_size=(96, 160), seed=3)
    assert osp.isfile(osp.join(root, 'images', 'training', 'ADE_train_00000001.jpg'))
    assert osp.isfile(osp.join(root, 'annotations', 'validation', 'ADE_val_00000001.png'))
    ds = _build('SyntheticADE20KDataset', root)
    assert len(ds) == 3 and len(ds.metainfo['classes']) == 7
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 96, 160)
    labels = np.unique(sample['data_samples'].gt_sem_seg.data.numpy())
    assert set(labels) <= set(range(7)) and 0 in labels and len(labels) > 1


def test_generator_is_deterministic_and_objects_follow_scene(tmp_path):
    import cv2
    a = generate_ade20k(str(tmp_path / 'a'), num_train=4, num_val=0, img_size=64, seed=7)
    b = generate_ade20k(str(tmp_path / 'b'), num_train=4, num_val=0, img_size=64, seed=7)
    for i in range(1, 5):
        name = f'annotations/training/ADE_train_{i:08d}.png'
        la = cv2.imread(osp.join(a, name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(la, cv2.imread(osp.join(b, name), cv2.IMREAD_UNCHANGED))
        objects = np.unique(la[la > 1])
        # all objects of one image share the scene: labels 2 + 2 * scene + shape
        assert len({(v - 2) // 2 for v in objects}) <= 1


def test_four_scene_data_reads_with_its_own_classes(tmp_path):
    """Data of 4 scenes (9 classes) is read with synthetic_ade20k_classes(4): the labels are
    the files' values minus 1 (reduce_zero_label), untouched by any class mapping; a subset of
    the default classes still gets mmseg's mapping."""
    import cv2
    from mmseg.registry import DATASETS

    from mmwinwin.datasets.synthetic import synthetic_ade20k_classes
    root = generate_ade20k(str(tmp_path), num_train=12, num_val=0, img_size=64, num_scenes=4,
                           seed=1)

    def build(classes):
        with DefaultScope.overwrite_default_scope('mmseg'):
            return DATASETS.build(dict(
                type='SyntheticADE20KDataset', data_root=root, pipeline=PIPELINE,
                metainfo=dict(classes=classes),
                data_prefix=dict(img_path='images/training',
                                 seg_map_path='annotations/training')))
    ds = build(synthetic_ade20k_classes(4))
    assert len(ds.metainfo['classes']) == 9 and len(ds.metainfo['palette']) == 9
    seen = set()
    for i in range(len(ds)):
        raw = cv2.imread(osp.join(root, f'annotations/training/ADE_train_{i + 1:08d}.png'),
                         cv2.IMREAD_UNCHANGED).astype(np.int64)
        want = np.where(raw == 0, 255, raw - 1)
        got = ds[i]['data_samples'].gt_sem_seg.data.numpy()[0]
        assert np.array_equal(got, want)
        seen |= set(np.unique(got).tolist())
    assert seen & {7, 8}  # the 4th scene's classes occur
    sub = build(('background', 'scene1_disc'))  # mmseg's mapping: other classes -> 255
    assert sub.label_map[3] == 1 and sub.label_map[1] == 255


def test_generator_rejects_tiny_images(tmp_path):
    with pytest.raises(ValueError, match='too small'):
        generate_ade20k(str(tmp_path), img_size=(20, 20))


@pytest.mark.skipif(not osp.isdir(osp.join(SHARED_DATA, 'ade20k_val3')),
                    reason='real ADE20K samples (../shared/data/ade20k_val3) not present')
def test_real_ade20k_samples_through_mmseg_and_backbone():
    """mmseg's ADE20KDataset reads the real samples; the backbone takes their odd sizes."""
    from mmwinwin.layers import RoPEVisionTransformer
    ds = _build('ADE20KDataset', osp.join(SHARED_DATA, 'ade20k_val3'), split='validation')
    assert len(ds) == 3
    vit = RoPEVisionTransformer(arch=dict(embed_dims=32, num_layers=1, num_heads=2)).eval()
    shapes = set()
    for i in range(3):
        sample = ds[i]
        img = sample['inputs'].float()[None]
        seg = sample['data_samples'].gt_sem_seg.data
        assert seg.shape[-2:] == img.shape[-2:]
        values = torch.unique(seg)
        assert values.max() == 255 or values.max() < 150  # reduce_zero_label: 0 -> 255
        feat = vit(img)[0]
        assert feat.shape[-2:] == (-(-img.shape[2] // 16), -(-img.shape[3] // 16))
        shapes.add(tuple(img.shape[-2:]))
    assert (512, 683) in shapes
