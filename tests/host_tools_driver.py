"""Runs configs through mmseg's and mmdet's *own* ``tools/train.py`` / ``tools/test.py`` (the
scripts their pip packages ship under ``.mim/tools/``), as a user of an OpenMMLab extension
would, in this one process (``runpy``, ``sys.argv`` set), from a folder holding generated data
at the configs' own data roots (:func:`make_data`, called by the test beforehand). Used by
``tests/test_host_native.py`` in a subprocess:

    python tests/host_tools_driver.py WORK_DIR RESULT_JSON [FAMILY ...]

This process imports no mmwinwin module before the host tools have run every family (the
configs' ``custom_imports`` does it), and nothing edits a config beyond the command-line
``--cfg-options`` a user would give to shorten a run.
"""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
import runpy
import sys
import time
import traceback

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHORT = ['train_cfg.max_iters=2', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1']

# family -> (host, config, extra --cfg-options, metric names in the test log)
FAMILIES = {
    'winwin_seg_phase': ('mmseg', 'configs/winwin/winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_'
                         'synthetic-ade20k-128x256.py', SHORT, ['mIoU']),
    'winwin_depth': ('mmseg', 'configs/winwin/winwin-2x4_vitdepth_rope-vit-tiny_1xb2-20i_'
                     'synthetic-nyu-128x192.py', SHORT, ['rmse']),
    'winwin_flow': ('mmseg', 'configs/winwin_flow/winwin-2x4_crocoflow-vit-tiny_1xb2-40i_'
                    'synthetic-flow-128x192.py', SHORT, ['flow/EPE']),
    'winwin_mask_rcnn': ('mmdet', 'configs/vitdet/winwin-2x4_mask-rcnn_rope-vit-tiny-win4_2i_'
                         'coco-synth-128x128.py', SHORT, ['coco/bbox_mAP', 'coco/segm_mAP']),
    'winwin_mask2former_panoptic': ('mmdet', 'configs/vitdet/winwin-2x4_mask2former_rope-vit-'
                                    'tiny-win4_2i_coco-synth-panoptic-128x128.py', SHORT,
                                    ['coco_panoptic/PQ']),
    'expedite_segmentor': ('mmseg', 'configs/expedite/upernet-expedite_rope-vit-tiny-a2-s0.7_'
                           'synthetic-ade20k-128x128.py', SHORT, ['mIoU']),
    'expedite_detector': ('mmdet', 'configs/expedite_det/mask2former_rope-vit-tiny-win4-'
                          'expedite-a2-c4_2i_coco-synth-panoptic-128x128.py', SHORT,
                          ['coco_panoptic/PQ']),
    'rope_vit_baseline': ('mmseg', 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-'
                          'ade20k-128x128.py', SHORT, ['mIoU']),
}


def host_tool(host: str, name: str) -> str:
    module = __import__(host)
    return osp.join(osp.dirname(module.__file__), '.mim', 'tools', name)


def make_data(work: str) -> None:
    """Each config's default data root, generated in its dataset's own layout."""
    from mmwinwin.datasets.synthetic import generate_ade20k, generate_coco, generate_nyu
    from mmwinwin.datasets.synthetic.flow import write_sintel_layout
    data = osp.join(work, 'data')
    generate_ade20k(osp.join(data, 'synthetic_ade20k_128x256'), num_train=4, num_val=1,
                    img_size=(128, 256), seed=0)
    generate_ade20k(osp.join(data, 'synthetic_ade20k'), num_train=4, num_val=1,
                    img_size=(128, 128), seed=0)
    generate_nyu(osp.join(data, 'synthetic_nyu_128x192'), num_train=4, num_val=1,
                 img_size=(128, 192), seed=0)
    write_sintel_layout(osp.join(data, 'synthetic_flow', 'train'), 4, size=(96, 128), seed=0)
    write_sintel_layout(osp.join(data, 'synthetic_flow', 'val'), 1, size=(96, 128), seed=1)
    generate_coco(osp.join(data, 'coco_synth'), num_train=2, num_val=1, seed=0)


def run_script(path: str, args: list[str]) -> dict:
    """``python PATH ARGS`` in this process; the outcome and the error, if any.

    It starts in a new second of the clock: mmengine names a runner's logger after its config
    and start second, and a second run of one config within that second in this process
    (train.py, then test.py) would get the first run's logger and write to its log file. A
    user's runs are separate processes, each with its own logger."""
    time.sleep(1.01 - time.time() % 1)
    argv = sys.argv
    sys.argv = [path] + [str(a) for a in args]
    try:
        runpy.run_path(path, run_name='__main__')
        return dict(ok=True)
    except SystemExit as err:  # a tool's clean exit with a message
        return dict(ok=err.code in (0, None), error=f'SystemExit: {err.code}')
    except Exception as err:  # noqa: BLE001  (the test reports what the tool raised)
        chain, e = [], err
        while e is not None:
            chain.append(f'{type(e).__name__}: {e}')
            e = e.__cause__ or e.__context__
        return dict(ok=False, error=chain[0], chain=chain, trace=traceback.format_exc()[-3000:])
    finally:
        sys.argv = argv


def newest_log(work_dir: str) -> str:
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)
    return open(logs[-1]).read() if logs else ''


def main(work: str, result_path: str, families: list[str]) -> None:
    os.chdir(work)
    results = {'mmwinwin_imported_before': 'mmwinwin' in sys.modules}
    for family in families:
        host, config, options, metrics = FAMILIES[family]
        cfg = osp.join(REPO, config)
        train_dir = osp.join(work, family, 'train')
        res = dict(host=host, config=config)
        res['train'] = run_script(host_tool(host, 'train.py'),
                                  [cfg, '--work-dir', train_dir, '--cfg-options', *options])
        ckpt = osp.join(train_dir, 'iter_2.pth')
        res['checkpoint'] = ckpt if osp.isfile(ckpt) else None
        if res['checkpoint']:
            test_dir = osp.join(work, family, 'test')
            res['test'] = run_script(host_tool(host, 'test.py'),
                                     [cfg, ckpt, '--work-dir', test_dir])
            log = newest_log(test_dir)
            res['metrics_logged'] = [m for m in metrics if f'{m}:' in log]
        results[family] = res

    # the same config through mmwinwin's own tools/train.py: the same weights, bit for bit
    host, config, options, _ = FAMILIES['winwin_seg_phase']
    own_dir = osp.join(work, 'own_tools', 'train')
    results['own_train'] = run_script(osp.join(REPO, 'tools', 'train.py'),
                                      [osp.join(REPO, config), '--work-dir', own_dir,
                                       '--cfg-options', *options])
    results['own_checkpoint'] = osp.join(own_dir, 'iter_2.pth')

    # a checkpoint whose pickle runs a command is refused through both tools' test.py
    evil = osp.join(work, 'payload.pth')
    marker = osp.join(work, 'PAYLOAD_RAN')
    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    torch.save({'state_dict': {}, 'meta': Payload()}, evil)
    cfg = osp.join(REPO, config)
    results['payload_host'] = run_script(host_tool(host, 'test.py'),
                                         [cfg, evil, '--work-dir', osp.join(work, 'evil_h')])
    results['payload_own'] = run_script(osp.join(REPO, 'tools', 'test.py'),
                                        [cfg, evil, '--work-dir', osp.join(work, 'evil_o')])
    results['payload_ran'] = osp.exists(marker)
    results['payload_path'] = evil
    with open(result_path, 'w') as f:
        json.dump(results, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or list(FAMILIES))
