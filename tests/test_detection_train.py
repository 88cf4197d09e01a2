"""Tiny Mask R-CNN and Mask2Former (panoptic, instance) with the ViTDet-style RoPE ViT:
generated COCO data, a few training iterations through tools/train.py, evaluation of the
saved checkpoint through tools/test.py, metrics printed (real mmdet/mmcv ops)."""
import os.path as osp

import pytest
from conftest import run_tool_in_process

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'vitdet')


def _train_and_test(cfg_name, cwd, metric_keys):
    cfg = osp.join(CFG, cfg_name)
    wd = str(cwd / ('wd_' + cfg_name[:20]))
    # validation off during these 2 iterations; tools/test.py evaluates the checkpoint
    out = run_tool_in_process([osp.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', wd,
                '--cfg-options', 'train_cfg.val_interval=100'], cwd, wd)
    assert 'Iter(train) [2/2]' in out and 'loss' in out
    ckpt = osp.join(wd, 'iter_2.pth')
    assert osp.isfile(ckpt)
    out = run_tool_in_process([osp.join(ROOT, 'tools', 'test.py'), cfg, ckpt, '--work-dir', wd],
                              cwd, wd)
    line = [ln for ln in out.splitlines() if 'Iter(test) [1/1]' in ln and metric_keys[0] in ln]
    assert line, out[-3000:]
    print(line[-1])
    for k in metric_keys:
        assert k in line[-1]
    return out


def test_mask_rcnn_train_test(coco_dir):
    _train_and_test('mask-rcnn_rope-vit-tiny-win4_2i_coco-synth-128x128.py', coco_dir,
                    ['coco/bbox_mAP', 'coco/segm_mAP'])


def test_mask2former_panoptic_train_test(coco_dir):
    out = _train_and_test('mask2former_rope-vit-tiny-win4_2i_coco-synth-panoptic-128x128.py',
                          coco_dir, ['coco_panoptic/PQ', 'coco_panoptic/PQ_th',
                                     'coco_panoptic/PQ_st'])
    assert 'Panoptic evaluation' in out


def test_mask2former_instance_train_test(coco_dir):
    _train_and_test('mask2former_rope-vit-tiny-win4_2i_coco-synth-128x128.py', coco_dir,
                    ['coco/bbox_mAP', 'coco/segm_mAP'])
