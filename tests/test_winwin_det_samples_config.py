"""The ViT-B Win-Win Mask R-CNN twin samples anchors, proposals and RoIs per window in
proportion to the window's share of the image (the rule its comment states), so the
heads' work per image scales with the kept tokens as the backbone's does; everything
else in its training settings is the full-resolution config's."""
import copy
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'vitdet')
FULL = 'mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py'
TWIN = 'winwin-2x28_mask-rcnn_rope-vit-b-win14_lsj-100e_coco.py'

# (section, key path) of every count that is per image in mmdet's Mask R-CNN
COUNTS = [('rpn', ('sampler', 'num')), ('rpn_proposal', ('nms_pre',)),
          ('rpn_proposal', ('max_per_img',)), ('rcnn', ('sampler', 'num'))]


def _get(d, keys):
    for k in keys:
        d = d[k]
    return d


def test_twin_samples_follow_the_window_share_of_the_image():
    full, twin = Config.fromfile(osp.join(CFG, FULL)), Config.fromfile(osp.join(CFG, TWIN))
    win = [t for t in twin.train_dataloader.dataset.dataset.pipeline
           if t['type'] == 'WinWinWindows'][0]
    patch = full.model.backbone.patch_size
    h, w = full.image_size
    share = win['window_size'] ** 2 / ((h // patch) * (w // patch))  # 28 * 28 / (64 * 64)
    assert abs(share - 0.19140625) < 1e-12
    for section, keys in COUNTS:
        ours = _get(twin.model.train_cfg[section], keys)
        theirs = _get(full.model.train_cfg[section], keys)
        assert ours == round(theirs * share), (section, keys, ours, theirs)
    # per image (all windows) fewer samples than full resolution, in proportion to the area
    n = win['num_windows']
    assert n * twin.model.train_cfg.rcnn.sampler.num < full.model.train_cfg.rcnn.sampler.num
    # nothing else changes but the assigners' use of ignore regions
    ours, theirs = copy.deepcopy(twin.model.train_cfg), copy.deepcopy(full.model.train_cfg)
    for section, keys in COUNTS:
        _get(ours[section], keys[:-1])[keys[-1]] = None
        _get(theirs[section], keys[:-1])[keys[-1]] = None
    for section in ('rpn', 'rcnn'):
        assert ours[section]['assigner'].pop('ignore_iof_thr') == 0.5
        theirs[section]['assigner'].pop('ignore_iof_thr')
    assert ours == theirs
