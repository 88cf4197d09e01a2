"""tools/train.py, tools/test.py and tools/dist_train.sh on the tiny config."""
import json
import os.path as osp
import re

import pytest

from mmwinwin.utils.checkpoint import load_checkpoint_path
import torch

from conftest import data_root_options, free_port, run_tool

def repo_env() -> dict:
    """This checkout's mmwinwin first on the path (tools/ would otherwise import the
    installed one)."""
    import os

    from conftest import REPO
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))


CONFIG = 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'


@pytest.fixture(scope='module')
def trained(synthetic_ade20k, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('train'))
    out = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
                    *data_root_options(synthetic_ade20k), 'train_cfg.max_iters=6',
                    'train_cfg.val_interval=6', 'default_hooks.checkpoint.interval=3'])
    return work_dir, out


def test_train_writes_checkpoints_and_validates(trained):
    work_dir, out = trained
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))
    assert re.search(r'Iter\(val\).*mIoU: \d+\.\d+', out)


def test_resume_continues_from_checkpoint(trained, synthetic_ade20k):
    work_dir, _ = trained
    out = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir, '--resume',
                    osp.join(work_dir, 'iter_3.pth'), '--cfg-options',
                    *data_root_options(synthetic_ade20k), 'train_cfg.max_iters=8',
                    'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=4'])
    assert 'resumed epoch: 0, iter: 3' in out
    assert 'Iter(train) [5/8]' in out and 'Iter(train) [1/8]' not in out
    ckpt = load_checkpoint_path(osp.join(work_dir, 'iter_8.pth'))  # weights_only
    assert ckpt['meta']['iter'] == 8
    assert 'message_hub' in ckpt and 'optimizer' in ckpt


def test_test_tool_evaluates_checkpoint(trained, synthetic_ade20k):
    work_dir, _ = trained
    out = run_tool(['tools/test.py', CONFIG, osp.join(work_dir, 'iter_6.pth'), '--work-dir',
                    work_dir, '--cfg-options', *data_root_options(synthetic_ade20k)])
    assert re.search(r'Iter\(test\).*mIoU: \d+\.\d+', out)
    assert 'scene0_disc' in out  # per-class table of the synthetic classes


def test_two_process_evaluation_matches_one_process(trained, synthetic_ade20k):
    """tools/dist_test.sh: two ranks split the validation set and gather it; the metric
    equals the single-process one, and both ranks exit cleanly."""
    work_dir, _ = trained
    ckpt = osp.join(work_dir, 'iter_6.pth')
    opts = ['--cfg-options', *data_root_options(synthetic_ade20k)]
    one = run_tool(['tools/test.py', CONFIG, ckpt, '--work-dir', work_dir + '/one', *opts])
    two = run_tool(['bash', 'tools/dist_test.sh', CONFIG, ckpt, '2', '--work-dir',
                    work_dir + '/two', *opts], env=dict(PORT=free_port(), OMP_NUM_THREADS='1'))
    miou = [re.search(r'Iter\(test\).*mIoU: (\d+\.\d+)', out).group(1) for out in (one, two)]
    assert miou[0] == miou[1]
    assert 'world_size: 2' in two or "'world_size': 2" in two or 'Distributed launcher: pytorch' in two


def test_test_tool_refuses_mismatching_checkpoint(trained, synthetic_ade20k):
    import subprocess
    import sys

    from conftest import REPO
    work_dir, _ = trained
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', CONFIG, osp.join(work_dir, 'iter_6.pth'),
         '--cfg-options', 'model.backbone.arch.embed_dims=48', *data_root_options(synthetic_ade20k)],
        cwd=REPO, env=repo_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'does not match the model built from the config' in proc.stderr
    assert 'backbone.patch_embed.proj.weight: checkpoint (64, 3, 16, 16) vs model (48' in proc.stderr


def test_unknown_cfg_option_path_is_refused(synthetic_ade20k):
    import subprocess
    import sys

    from conftest import REPO
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--cfg-options',
                           'model.backbon.drop_path_rate=0.1'], cwd=REPO, env=repo_env(),
                          capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "no key 'backbon' at model. Did you mean ['backbone']" in proc.stderr


def test_two_process_training_keeps_ranks_in_sync(synthetic_ade20k, tmp_path):
    """tools/dist_train.sh on 2 CPU ranks, SyncBN heads: starting from known weights, the
    weights move, and both ranks end with identical parameters and buffers (the check
    hook compares them) equal to the saved checkpoint's."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from conftest import REPO
    work_dir = str(tmp_path)
    # the initial weights, written as a real checkpoint that the run starts from
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(REPO, CONFIG)).model)
    model.init_weights()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    init_ckpt = osp.join(work_dir, 'init.pth')
    torch.save(dict(state_dict=initial), init_ckpt)

    config = tmp_path / 'with_sync_check.py'
    config.write_text(f"_base_ = '{osp.join(REPO, CONFIG)}'\n"
                      "norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
                      "model = dict(decode_head=dict(norm_cfg=norm_cfg), "
                      "auxiliary_head=dict(norm_cfg=norm_cfg))\n"
                      f"load_from = '{init_ckpt}'\n"
                      "custom_hooks = [dict(type='ParamSyncCheckHook')]\n")
    out = run_tool(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', work_dir,
                    '--cfg-options', *data_root_options(synthetic_ade20k),
                    'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                    'default_hooks.checkpoint.interval=3'],
                   env=dict(PORT=free_port(), OMP_NUM_THREADS='1'))
    assert 'Distributed launcher: pytorch' in out or 'world_size' in out.lower()
    report = json.load(open(osp.join(work_dir, 'param_sync.json')))
    assert report['world_size'] == 2 and report['iter'] == 3
    assert report['max_abs_diff'] == 0.0 and report['differing'] == []
    rank0, rank1 = report['checksums']
    assert rank0 == rank1
    trained = load_checkpoint_path(osp.join(work_dir, 'iter_3.pth'))['state_dict']
    assert trained.keys() == initial.keys()
    # the saved weights and buffers are what both ranks hold (sum, sum of squares)
    for name, t in trained.items():
        d = t.double()
        assert rank1[name] == pytest.approx([float(d.sum()), float((d * d).sum())],
                                            rel=1e-9, abs=1e-9), name
    # and training moved them: every trained parameter, and the BatchNorm statistics
    params = [k for k, v in model.named_parameters() if v.requires_grad]
    unchanged = [k for k in params if torch.equal(trained[k], initial[k])]
    assert len(unchanged) <= len(params) // 20, f'{len(unchanged)}/{len(params)} unchanged'
    bn_vars = [k for k in trained if k.endswith('running_var')]
    assert bn_vars and all(not torch.equal(trained[k], initial[k]) for k in bn_vars)


def test_amp_on_cpu_stops_with_a_clear_message():
    import subprocess
    import sys

    from conftest import REPO
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--amp'], cwd=REPO, env=repo_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert '--amp needs a CUDA GPU' in proc.stderr
