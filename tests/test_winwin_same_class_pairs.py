"""``WinWinWindows(same_class_pairs=p)``: the first window over two objects of one class.

The positions a window may take to hold a pair are enumerated here in pixels from the boxes
(a ``s x s``-token window at ``(t, l)`` covers pixels ``[16 t, 16 (t + s))``), not from the
code's token rounding; the draws are held to that set and to a uniform spread over it.
"""
import collections
import itertools
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import init_default_scope

import mmwinwin  # noqa: F401
from conftest import SHARED_DATA
from mmwinwin.datasets.winwin import WinWinWindows

P, S = 16, 6  # patch size, window side (tokens); images of 256x256 px: a 16x16 grid
# class 0: two boxes that fit in one 96 px window together; class 1: two boxes too far apart
BOXES = np.array([[40, 50, 70, 80], [90, 100, 110, 118], [10, 200, 40, 240],
                  [200, 10, 240, 40]], dtype=np.float32)
LABELS = np.array([0, 0, 1, 1])


def _results(boxes=BOXES, labels=LABELS, ignore=None, size=256):
    out = dict(img=np.zeros((size, size, 3), np.uint8), gt_bboxes=HorizontalBoxes(boxes),
               gt_bboxes_labels=labels.copy())
    if ignore is not None:
        out['gt_ignore_flags'] = np.asarray(ignore, bool)
    return out


def _holding_positions(a, b, grid=16):
    """Every top-left token (t, l) whose window's pixels contain both boxes."""
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[2], b[2]), max(a[3], b[3])
    return {(t, l) for t in range(grid - S + 1) for l in range(grid - S + 1)
            if P * t <= y0 and y1 <= P * (t + S) and P * l <= x0 and x1 <= P * (l + S)}


def _overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_first_window_holds_the_pair_at_a_uniform_position():
    valid = _holding_positions(BOXES[0], BOXES[1])
    assert len(valid) == 4  # rows 2-3 x columns 1-2 hold the class-0 pair
    t = WinWinWindows(num_windows=2, window_size=S, patch_size=P, seed=0, same_class_pairs=1)
    counts = collections.Counter()
    draws = 1800
    for _ in range(draws):
        wins = t(_results())['winwin_windows']
        first, second = wins
        counts[first[:2]] += 1
        assert first[2:] == second[2:] == (S, S)
        assert not _overlap(first, second)
        assert 0 <= second[0] <= 16 - S and 0 <= second[1] <= 16 - S
    assert set(counts) == valid  # never the far-apart class-1 pair, never a random place
    expected = draws / len(valid)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 16.3  # 3 dof: p(chi2 > 16.3) ~ 1e-3


def test_share_of_images_and_images_without_a_pair():
    t = WinWinWindows(num_windows=2, window_size=S, patch_size=P, seed=1, same_class_pairs=0.5)
    valid = _holding_positions(BOXES[0], BOXES[1])
    held = sum(t(_results())['winwin_windows'][0][:2] in valid for _ in range(2000))
    # ~1000 placed on the pair, plus random windows that happen to hold it (about 4 of 121
    # places)
    assert 0.5 + 0.5 * 4 / 121 - 0.05 < held / 2000 < 0.5 + 0.5 * 4 / 121 + 0.05
    # no same-class pair that fits (labels all differ; or one of the pair ignored):
    # the usual windows, valid and spread over the image
    for kw in (dict(labels=np.array([0, 1, 2, 3])), dict(ignore=[False, True, False, False])):
        t = WinWinWindows(num_windows=2, window_size=S, patch_size=P, seed=2,
                          same_class_pairs=1)
        firsts = set()
        for _ in range(300):
            a, b = t(_results(**kw))['winwin_windows']
            assert not _overlap(a, b)
            firsts.add(a[:2])
        assert len(firsts) > 60


def test_default_draws_the_papers_windows_unchanged():
    """same_class_pairs=0 (the default) leaves the window stream of the paper's uniform
    placement untouched, boxes or not."""
    a = WinWinWindows(num_windows=2, window_size=S, patch_size=P, seed=3)
    b = WinWinWindows(num_windows=2, window_size=S, patch_size=P, seed=3, same_class_pairs=0)
    for _ in range(20):
        assert a(dict(img=np.zeros((256, 256, 3), np.uint8)))['winwin_windows'] == \
            b(_results())['winwin_windows']


@pytest.mark.parametrize('kwargs, match', [
    (dict(same_class_pairs=1.5), r'probability in \[0, 1\]'),
    (dict(same_class_pairs=True), r'probability in \[0, 1\]'),
    (dict(same_class_pairs='0.5'), r'probability in \[0, 1\]'),
    (dict(same_class_pairs=0.5, mode='random_tokens'), 'one fixed size'),
    (dict(same_class_pairs=0.5, window_size=(4, 6)), 'one fixed size'),
])
def test_bad_settings_are_named(kwargs, match):
    kwargs = dict(dict(num_windows=2, window_size=S, patch_size=P), **kwargs)
    with pytest.raises(ValueError, match=match):
        WinWinWindows(**kwargs)


def test_missing_boxes_name_the_loading_step():
    t = WinWinWindows(num_windows=2, window_size=S, patch_size=P, same_class_pairs=1)
    with pytest.raises(KeyError, match=r'LoadAnnotations\(with_bbox=True\)'):
        t(dict(img=np.zeros((256, 256, 3), np.uint8)))


COCO_MINI = osp.join(SHARED_DATA, 'coco_val2017_mini')


@pytest.mark.skipif(not osp.isdir(COCO_MINI),
                    reason='real COCO samples (../shared/data/coco_val2017_mini) not present')
def test_real_coco_images_through_mmdets_loading():
    """Real COCO val images through mmdet's own loading, resize and flip: wherever two
    objects of one class fit in a window, the first window holds two of them."""
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    t = WinWinWindows(num_windows=2, window_size=12, patch_size=P, seed=0, same_class_pairs=1)
    ds = DATASETS.build(dict(
        type='CocoDataset', data_root=COCO_MINI, ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), test_mode=False, filter_cfg=None,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='Resize', scale=(512, 384), keep_ratio=True),
                  dict(type='RandomFlip', prob=0.5)]))
    placed = 0
    for i in range(len(ds)):
        res = ds[i]
        if not osp.exists(res['img_path']):
            continue
        boxes = res['gt_bboxes'].tensor.numpy()
        labels, ignore = res['gt_bboxes_labels'], res['gt_ignore_flags']
        h, w = res['img'].shape[:2]
        pairs = [(a, b) for a, b in itertools.combinations(range(len(boxes)), 2)
                 if labels[a] == labels[b] and not ignore[a] and not ignore[b]]
        gh, gw = h // P, w // P
        # some 12 x 12-token window inside the image's whole patches holds both boxes and
        # leaves room for a second window that does not overlap it
        fits = [(a, b) for a, b in pairs
                if any(P * y <= min(boxes[a][1], boxes[b][1])
                       and max(boxes[a][3], boxes[b][3]) <= P * (y + 12)
                       and P * x <= min(boxes[a][0], boxes[b][0])
                       and max(boxes[a][2], boxes[b][2]) <= P * (x + 12)
                       and any(abs(y2 - y) >= 12 or abs(x2 - x) >= 12
                               for y2 in range(gh - 11) for x2 in range(gw - 11))
                       for y in range(gh - 11) for x in range(gw - 11))]
        top, left, s, _ = t(dict(res))['winwin_windows'][0]
        inside = [k for k in range(len(boxes)) if not ignore[k]
                  and P * left <= boxes[k][0] and boxes[k][2] <= P * (left + s)
                  and P * top <= boxes[k][1] and boxes[k][3] <= P * (top + s)]
        same = collections.Counter(int(labels[k]) for k in inside)
        if fits:
            assert max(same.values()) >= 2, (res['img_path'], inside)
            placed += 1
    assert placed >= 1
