"""crop_sample_to_window: every target of a sample cut to one Win-Win window.

Expected values are computed here independently (numpy slicing of position-coded maps,
box / rectangle arithmetic by hand), never by the code under test."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmwinwin.models.winwin.window_targets import BorderRule, crop_sample_to_window

H, W, P = 96, 128, 16


def _rect_mask(x1, y1, x2, y2, h=H, w=W):
    m = np.zeros((h, w), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def _det_sample(rects, labels=None, crowd=(), poly=False, sem=None):
    """A DetDataSample with one rectangle instance per (x1, y1, x2, y2) in ``rects``."""
    s = DetDataSample(metainfo=dict(img_shape=(H, W), pad_shape=(H, W),
                                    batch_input_shape=(H, W), flip=True))
    labels = list(range(len(rects))) if labels is None else labels

    def instances(rs, lbs):
        if poly:
            masks = PolygonMasks([[np.array([x1, y1, x2, y1, x2, y2, x1, y2], float)]
                                  for x1, y1, x2, y2 in rs], H, W)
        else:
            masks = BitmapMasks(np.stack([_rect_mask(*r) for r in rs]) if rs else
                                np.zeros((0, H, W), np.uint8), H, W)
        return InstanceData(bboxes=HorizontalBoxes(torch.tensor(rs, dtype=torch.float32)
                                                   .reshape(-1, 4)),
                            labels=torch.tensor(lbs, dtype=torch.long), masks=masks)

    s.gt_instances = instances(list(rects), labels)
    s.ignored_instances = instances(list(crowd), [7] * len(crowd))
    if sem is not None:
        s.gt_sem_seg = PixelData(sem_seg=sem)
    return s


def _position_map():
    """(1, H, W) int map whose value encodes the pixel's (y, x): y * 1000 + x."""
    ys, xs = np.mgrid[0:H, 0:W]
    return torch.from_numpy(ys * 1000 + xs)[None]


def test_pixel_maps_line_up_for_mmseg():
    seg = SegDataSample(metainfo=dict(img_shape=(H, W), flip=False))
    pos = _position_map()
    seg.gt_sem_seg = PixelData(data=pos.clone())
    seg.gt_depth_map = PixelData(data=pos.float() / 7)
    win = (1, 2, 3, 3)  # tokens: top 1, left 2 -> pixels y 16..64, x 32..80
    out = crop_sample_to_window(seg, win, P)
    assert isinstance(out, SegDataSample)
    ys, xs = np.mgrid[16:64, 32:80]
    np.testing.assert_array_equal(out.gt_sem_seg.data[0].numpy(), ys * 1000 + xs)
    np.testing.assert_allclose(out.gt_depth_map.data[0].numpy(), (ys * 1000 + xs) / 7, rtol=1e-6)
    for k in ('img_shape', 'pad_shape', 'batch_input_shape', 'ori_shape'):
        assert tuple(out.metainfo[k]) == (48, 48)
    assert out.metainfo['winwin_crop'] == win and 'flip' not in out.metainfo


@pytest.mark.parametrize('poly', [False, True])
def test_boxes_masks_and_panoptic_segments_line_up(poly):
    rng = np.random.default_rng(0)
    rects = []
    for _ in range(6):
        x1, y1 = int(rng.integers(0, W - 40)), int(rng.integers(0, H - 40))
        rects.append((x1, y1, x1 + int(rng.integers(20, 40)), y1 + int(rng.integers(20, 40))))
    sem = _position_map().clone()
    sem[:, 70:, :30] = 255  # a void region
    s = _det_sample(rects, sem=sem, poly=poly)
    win = (2, 1, 4, 4)  # pixels y 32..96, x 16..80
    out = crop_sample_to_window(s, win, P, rule=dict(min_visible_area=0, min_visible_fraction=0,
                                                     dropped='discard'))
    y1w, x1w, side = 32, 16, 64
    # panoptic segments: pixel for pixel, void stays void
    expected_sem = sem[0, y1w:y1w + side, x1w:x1w + side].numpy()
    np.testing.assert_array_equal(out.gt_sem_seg.sem_seg[0].numpy(), expected_sem)
    assert (out.gt_sem_seg.sem_seg[0, 70 - y1w:, :30 - x1w] == 255).all()
    # instances: every rectangle that overlaps the window, boxes clipped, masks cropped
    expect = []
    for label, (x1, y1, x2, y2) in enumerate(rects):
        bx1, by1 = max(x1 - x1w, 0), max(y1 - y1w, 0)
        bx2, by2 = min(x2 - x1w, side), min(y2 - y1w, side)
        if bx2 > bx1 and by2 > by1:
            expect.append((label, (bx1, by1, bx2, by2)))
    inst = out.gt_instances
    assert inst.labels.tolist() == [lb for lb, _ in expect]
    np.testing.assert_allclose(inst.bboxes.tensor.numpy(), [b for _, b in expect])
    if poly:
        # polygon area of each cropped rectangle = the clipped rectangle's area
        np.testing.assert_allclose(inst.masks.areas,
                                   [(b[2] - b[0]) * (b[3] - b[1]) for _, b in expect])
    else:
        full = np.stack([_rect_mask(*rects[lb]) for lb, _ in expect])
        np.testing.assert_array_equal(inst.masks.masks, full[:, y1w:y1w + side, x1w:x1w + side])
    assert (inst.masks.height, inst.masks.width) == (side, side)


def _one(rect, rule, win=(1, 1, 2, 2), boxes_only=False):
    s = _det_sample([rect])
    if boxes_only:
        s.gt_instances = InstanceData(bboxes=s.gt_instances.bboxes.tensor,
                                      labels=s.gt_instances.labels)
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                           labels=torch.zeros(0, dtype=torch.long))
    out = crop_sample_to_window(s, win, P, rule=rule)
    return len(out.gt_instances), len(out.ignored_instances), out


# window (1, 1, 2, 2) tokens = pixels x, y in [16, 48): 32 x 32 = 1024 px
# (rect, kept with the default rule min_visible_area=16, min_visible_fraction=0.25)
BORDER_CASES = [
    ((20, 20, 24, 24), True),    # 16 px, fully visible: area just at the threshold
    ((20, 20, 25, 23), False),   # 15 px, fully visible: just below the area threshold
    ((20, 1, 40, 21), True),     # 20x20 object, 5 of 20 rows visible: 100 px, 0.25 -> kept
    ((20, 0, 40, 20), False),    # 4 of 20 rows: 80 px (>= 16) but 0.20 < 0.25 -> dropped
    ((32, 32, 96, 96), True),    # 64x64 object (> window): 16x16 visible = 0.25 of the window
    ((32, 33, 96, 96), False),   # 16x15 visible = 240 px < 0.25 * 1024
]


def _visible_box(rect):
    x1, y1, x2, y2 = rect
    return [max(x1, 16) - 16, max(y1, 16) - 16, min(x2, 48) - 16, min(y2, 48) - 16]


@pytest.mark.parametrize('dropped', ['ignore', 'discard'])
@pytest.mark.parametrize('rect,kept', BORDER_CASES)
def test_border_rule_just_above_and_below(rect, kept, dropped):
    n_kept, n_ign, out = _one(rect, dict(dropped=dropped))
    if kept:
        assert (n_kept, n_ign) == (1, 0)
        np.testing.assert_allclose(out.gt_instances.bboxes.tensor[0].tolist(), _visible_box(rect))
    elif dropped == 'ignore':
        assert (n_kept, n_ign) == (0, 1)
        # the ignore region is the instance's visible part: clipped box, cropped mask
        np.testing.assert_allclose(out.ignored_instances.bboxes.tensor[0].tolist(),
                                   _visible_box(rect))
        x1, y1, x2, y2 = _visible_box(rect)
        np.testing.assert_array_equal(out.ignored_instances.masks.masks[0],
                                      _rect_mask(x1, y1, x2, y2, 32, 32))
    else:
        assert (n_kept, n_ign) == (0, 0)


@pytest.mark.parametrize('rect,kept', BORDER_CASES)
def test_border_rule_on_box_areas_without_masks(rect, kept):
    n_kept, n_ign, out = _one(rect, None, boxes_only=True)
    assert (n_kept, n_ign) == ((1, 0) if kept else (0, 1))
    boxes = out.gt_instances.bboxes if kept else out.ignored_instances.bboxes
    assert isinstance(boxes, torch.Tensor)  # plain tensors stay plain tensors
    np.testing.assert_allclose(boxes[0].tolist(), _visible_box(rect))


def test_crowd_regions_stay_ignored():
    # a 1-pixel-wide strip of a crowd region inside the window stays ignore (no threshold),
    # a crowd region outside the window disappears; a dropped sliver joins the crowd
    s = _det_sample([(20, 20, 40, 40), (0, 0, 17, 10)],
                    crowd=[(47, 30, 90, 60), (60, 60, 90, 90)])
    out = crop_sample_to_window(s, (1, 1, 2, 2), P)
    assert out.gt_instances.labels.tolist() == [0]
    ign = out.ignored_instances
    assert ign.labels.tolist() == [7]  # the sliver (0, 0, 17, 10) has no pixel in the window
    np.testing.assert_allclose(ign.bboxes.tensor.tolist(), [[31, 14, 32, 32]])
    assert int(ign.masks.masks.sum()) == 18
    s = _det_sample([(20, 20, 40, 40), (10, 20, 17, 30)], crowd=[(47, 30, 90, 60)])
    out = crop_sample_to_window(s, (1, 1, 2, 2), P)
    assert out.ignored_instances.labels.tolist() == [7, 1]  # crowd first, then the dropped one


def test_empty_windows():
    # instances elsewhere: the window is a valid negative sample with empty targets
    s = _det_sample([(80, 60, 120, 90)])
    out = crop_sample_to_window(s, (0, 0, 2, 2), P)
    assert len(out.gt_instances) == 0 and len(out.ignored_instances) == 0
    assert out.gt_instances.bboxes.tensor.shape == (0, 4)
    assert out.gt_instances.masks.masks.shape == (0, 32, 32)
    # no instances at all
    s = _det_sample([])
    out = crop_sample_to_window(s, (0, 0, 2, 2), P)
    assert len(out.gt_instances) == 0 and out.gt_instances.masks.masks.shape == (0, 32, 32)


def test_bad_rules_and_sizes_are_clear_errors():
    s = _det_sample([(20, 20, 40, 40)])
    with pytest.raises(ValueError, match="dropped must be 'ignore'"):
        crop_sample_to_window(s, (0, 0, 2, 2), P, rule=dict(dropped='keep'))
    with pytest.raises(ValueError, match='min_visible_fraction'):
        BorderRule(min_visible_fraction=2)
    with pytest.raises(KeyError, match='min_visible_area'):
        BorderRule.build(dict(min_visible_aera=3))
    with pytest.raises(ValueError, match='do not cover the window'):
        crop_sample_to_window(s, (4, 6, 4, 4), P)  # pixels up to 128 x 128 > 96 rows
