"""Window mosaics (WinWinMask2Former(head_mosaic=...)): windows that tile an image, cropped
with every piece kept and laid out again as a mosaic, give back the image's features, its
segment map and, per instance, its mask (the union of its pieces) and boxes that are the
boxes of the placed masks."""
import numpy as np
import pytest
import torch

pytest.importorskip('mmdet')
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import HorizontalBoxes  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmengine.structures import InstanceData, PixelData  # noqa: E402

from mmwinwin.models.winwin.window_mosaic import (mosaic_features, mosaic_groups,  # noqa: E402
                                                  mosaic_samples)
from mmwinwin.models.winwin.window_targets import crop_sample_to_window  # noqa: E402


def _sample(rng, h=32, w=64, n=5):
    yy, xx = np.mgrid[:h, :w]
    masks = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 12)
        masks.append(((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8))
    masks = np.stack(masks)
    bm = BitmapMasks(masks, h, w)
    s = DetDataSample(metainfo=dict(img_shape=(h, w), winwin_grid=(h // 8, w // 8)))
    s.gt_instances = InstanceData(labels=torch.as_tensor(rng.integers(0, 2, n)), masks=bm,
                                  bboxes=bm.get_bboxes('hbox'), ids=torch.arange(n))
    s.gt_sem_seg = PixelData(sem_seg=torch.as_tensor(rng.integers(0, 5, (1, h, w))))
    return s, masks


def test_mosaic_of_tiling_windows_is_the_image():
    rng = np.random.default_rng(0)
    sample, masks = _sample(rng)
    rule = dict(min_visible_area=0, min_visible_fraction=0.0, recompute_bbox=True)
    wins = [(r * 2, c * 2, 2, 2) for r in range(2) for c in range(4)]  # 16x16 px, patch 8
    crops = [crop_sample_to_window(sample, win, 8, rule) for win in wins]
    mos = mosaic_samples(crops, 2, 4)
    assert tuple(mos.metainfo['img_shape']) == (32, 64) and mos.metainfo['winwin_mosaic'] == (2, 4)
    torch.testing.assert_close(mos.gt_sem_seg.sem_seg, sample.gt_sem_seg.sem_seg)
    inst = mos.gt_instances
    got = inst.masks.to_ndarray()
    for i in range(len(masks)):
        pieces = got[(inst.ids == i).numpy()]
        np.testing.assert_array_equal(pieces.any(0), masks[i].astype(bool))
        assert (inst.labels[inst.ids == i] == sample.gt_instances.labels[i]).all()
    for m, box in zip(got, inst.bboxes.tensor):  # each box is its placed piece's
        ys, xs = np.nonzero(m)
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert isinstance(inst.bboxes, HorizontalBoxes)
    feats = torch.randn(1, 3, 4, 8)  # a stride-8 map of the image, cut into the windows
    cut = torch.cat([feats[..., t:t + 2, lf:lf + 2] for t, lf, _, _ in wins])
    torch.testing.assert_close(mosaic_features(cut, 2, 4), feats)
    assert mosaic_groups(10, 2, 4) == [(0, 2, 4), (8, 1, 2)]
    assert mosaic_groups(8, 2, 4) == [(0, 2, 4)]
    with pytest.raises(ValueError, match='2x4 mosaic needs 8'):
        mosaic_samples(crops[:7], 2, 4)
