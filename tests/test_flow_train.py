"""A few Win-Win training iterations on generated pairs through tools/train.py, then
full-resolution evaluation of the saved checkpoint through tools/test.py (EPE printed)."""
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest

from mmwinwin.fileio.flow import read_flo, read_flow
from mmwinwin.datasets.synthetic.flow import write_sintel_layout

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(ROOT, 'configs', 'winwin_flow')
EPE = re.compile(r'flow/EPE: ([0-9.]+)')


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_train_windows_then_test_full_resolution(tmp_path):
    cfg = 'winwin-2x4_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py'
    data = tmp_path / 'data'
    write_sintel_layout(str(data / 'train'), 4, size=(96, 128), seed=0)
    write_sintel_layout(str(data / 'val'), 2, size=(96, 128), seed=1)
    work = tmp_path / 'work'
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={data}/train',
            f'val_dataloader.dataset.data_root={data}/val',
            f'test_dataloader.dataset.data_root={data}/val',
            'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'param_scheduler.0.end=4',
            'default_hooks.logger.interval=2', 'default_hooks.checkpoint.interval=4']
    out = _run(['tools/train.py', osp.join(CFG_DIR, cfg), '--work-dir', str(work)] + opts, ROOT)
    assert 'loss_flow' in out and 'train_epe' in out
    val = EPE.findall(out)
    assert val, out[-3000:]
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    sub = tmp_path / 'submission'
    out = _run(['tools/test.py', osp.join(CFG_DIR, cfg), str(ckpt), '--work-dir',
                str(tmp_path / 'test')] + opts[:1] + opts[3:4]
               + [f'test_evaluator.output_dir={sub}'], ROOT)
    test = EPE.findall(out)
    assert test, out[-3000:]
    # the reloaded checkpoint evaluates the 96x128 frames in one pass to the same EPE
    assert float(test[-1]) == pytest.approx(float(val[-1]), abs=1e-3)
    for key in ('1px', '3px', '5px', 'Fl-all', 'EPE-noc'):
        assert f'flow/{key}:' in out
    # the estimated flows were also written in Sintel's submission layout; their EPE
    # against the ground truth, computed here, is the EPE the tool printed
    written = sorted(sub.glob('clean/*/frame_*.flo'))
    assert len(written) == 2, list(sub.rglob('*'))
    errs = []
    for f in written:
        pred = read_flo(str(f))
        gt, valid = read_flow(str(data / 'val' / 'training' / 'flow' / f.parent.name / f.name))
        assert pred.shape == gt.shape == (96, 128, 2)
        errs.append(np.sqrt(((pred - gt) ** 2).sum(-1))[valid])
    assert float(np.concatenate(errs).mean()) == pytest.approx(float(test[-1]), abs=1e-3)
    print(f'{cfg}: full-resolution EPE after 4 window iterations = {test[-1]}')
