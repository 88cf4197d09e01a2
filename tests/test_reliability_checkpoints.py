"""Issue 10, reliability of checkpoints and settings: one test per item.

1. a truncated latest checkpoint: ``--resume`` falls back to the newest one that loads;
2. a 0-byte checkpoint: a clear error naming the file (tools, Pretrained, converters);
3. every load is ``weights_only=True`` with an allow-list, also under
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, while Runner checkpoints still resume;
4. unknown keys in mmwinwin settings dicts and hook kwargs are refused at start-up.
"""
import os
import os.path as osp
import pickletools
import subprocess
import sys
import zipfile

import pytest
import torch

from conftest import REPO, data_root_options, run_tool

CONFIG = 'configs/rope_vit/upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'


def run_failing(args, env=None, timeout=300):
    """Run a tool that must fail; return its combined output."""
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
                    OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode != 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def trained(synthetic_ade20k, tmp_path_factory):
    """A real Runner run with checkpoints at iterations 3 and 6."""
    work_dir = str(tmp_path_factory.mktemp('reliability_train'))
    run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
              *data_root_options(synthetic_ade20k), 'train_cfg.max_iters=6',
              'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=3',
              'default_hooks.checkpoint.max_keep_ckpts=3'], env=dict(OMP_NUM_THREADS='1'))
    return work_dir


class Payload:
    """Unpickling this calls os.system: writes a marker file if the payload runs."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_truncated_latest_checkpoint(trained, synthetic_ade20k, tmp_path):
    import shutil
    work_dir = str(tmp_path / 'work')
    shutil.copytree(trained, work_dir)
    # mmengine's pointer names the absolute path of the original run: point at the copy
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_6.pth'))
    latest = osp.join(work_dir, 'iter_6.pth')
    data = open(latest, 'rb').read()
    with open(latest, 'wb') as f:  # a save cut short (disk full, job killed)
        f.write(data[:len(data) // 2])
    out = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir, '--resume',
                    '--cfg-options', *data_root_options(synthetic_ade20k),
                    'train_cfg.max_iters=8', 'train_cfg.val_interval=100',
                    'default_hooks.checkpoint.interval=4'], env=dict(OMP_NUM_THREADS='1'))
    assert f'{latest}: Checkpoint' in out and 'truncated or corrupt' in out
    assert f"Resuming from {osp.join(work_dir, 'iter_3.pth')}" in out
    assert 'resumed epoch: 0, iter: 3' in out
    assert 'Iter(train) [5/8]' in out and 'Iter(train) [1/8]' not in out
    from mmwinwin.utils import load_checkpoint
    assert load_checkpoint(osp.join(work_dir, 'iter_8.pth'))['meta']['iter'] == 8


def test_empty_checkpoint(synthetic_ade20k, tmp_path):
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    expected = f"Checkpoint '{empty}' is empty (0 bytes)"
    # tools/test.py
    out = run_failing(['tools/test.py', CONFIG, empty])
    assert expected in out and 'EOFError' not in out and 'Traceback' not in out
    # tools/train.py --resume
    out = run_failing(['tools/train.py', CONFIG, '--resume', empty, '--cfg-options',
                       *data_root_options(synthetic_ade20k)])
    assert expected in out and 'Traceback' not in out
    # the converters
    for conv in ('vit2mmwinwin.py', 'croco2mmwinwin.py'):
        out = run_failing([f'tools/model_converters/{conv}', empty, str(tmp_path / 'out.pth')])
        assert expected in out and 'Traceback' not in out
    # init_cfg=dict(type='Pretrained') of a backbone
    from mmwinwin.layers import CorruptCheckpointError
    from mmwinwin.models.vit import RoPEViT
    model = RoPEViT(arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
                    img_size=32, patch_size=16,
                    init_cfg=dict(type='Pretrained', checkpoint=empty))
    with pytest.raises(CorruptCheckpointError, match=r'empty \(0 bytes\)') as err:
        model.init_weights()
    assert empty in str(err.value)
    # the core loader (torch alone) on a truncated checkpoint and on a file that is none
    from mmwinwin.layers import load_checkpoint_file
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.arange(1000.)}, good)
    data = good.read_bytes()
    for name, content in (('cut.pth', data[:len(data) // 2]), ('text.pth', b'hello world'),
                          ('pickle.pth', b'\x80\x02}q\x00.')):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CorruptCheckpointError, match='truncated or corrupt') as err:
            load_checkpoint_file(str(path))
        assert str(path) in str(err.value)
    assert torch.equal(load_checkpoint_file(str(good))['w'], torch.arange(1000.))


def test_loading_checkpoints_is_weights_only(trained, synthetic_ade20k, monkeypatch, tmp_path):
    marker = tmp_path / 'payload_ran'
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(str(marker))}, evil)
    env = dict(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    # tools/test.py with the environment that turns torch's default off
    out = run_failing(['tools/test.py', CONFIG, evil], env=env)
    assert not marker.exists(), 'the pickled payload ran'
    assert evil in out and 'posix.system' in out and 'allow-list' in out
    # tools/train.py load_from / --resume PATH and the converters
    data = data_root_options(synthetic_ade20k)
    for args in (['tools/train.py', CONFIG, '--cfg-options', f'load_from={evil}', *data],
                 ['tools/train.py', CONFIG, '--resume', evil, '--cfg-options', *data],
                 ['tools/model_converters/vit2mmwinwin.py', evil, str(tmp_path / 'o.pth')],
                 ['tools/model_converters/croco2mmwinwin.py', evil, str(tmp_path / 'o.pth')]):
        out = run_failing(args, env=env)
        assert not marker.exists(), f'the payload ran under {args}'
        assert evil in out and 'posix.system' in out and 'Traceback' not in out, args
    # in-process: Pretrained init of a backbone, mmengine's loader, the core loaders
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmwinwin.layers import UnsafeCheckpointError
    from mmwinwin.layers.flow.croco_checkpoint import load_croco_checkpoint_file
    from mmwinwin.models.vit import RoPEViT
    from mmwinwin.utils import load_checkpoint
    model = RoPEViT(arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
                    img_size=32, patch_size=16, init_cfg=dict(type='Pretrained', checkpoint=evil))
    from mmwinwin.utils.checkpoint import safe_checkpoint_loading

    def mmengine_load_in_a_safe_run():  # what SafeCheckpointLoadingHook switches on
        with safe_checkpoint_loading():
            return CheckpointLoader.load_checkpoint(evil)

    for load in (model.init_weights, mmengine_load_in_a_safe_run,
                 lambda: load_croco_checkpoint_file(evil), lambda: load_checkpoint(evil)):
        with pytest.raises(UnsafeCheckpointError, match='posix.system'):
            load()
    assert not marker.exists()
    # a checkpoint mmengine's Runner wrote (message hub, optimizer, numpy scalars,
    # HistoryBuffer) still loads, and the allow-list is exactly what such files hold
    ckpt_path = osp.join(trained, 'iter_6.pth')
    ckpt = load_checkpoint(ckpt_path)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(ckpt)
    with zipfile.ZipFile(ckpt_path) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith('data.pkl')))
    found = set()
    for op, arg, _ in pickletools.genops(pkl):  # protocol 2: GLOBAL 'module name'
        if op.name == 'GLOBAL':
            found.add(arg.replace(' ', '.').replace('__builtin__.', 'builtins.'))
    from mmwinwin.utils.checkpoint import mmengine_safe_globals
    allowed = set()
    for g in mmengine_safe_globals():
        allowed.add(g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}')
    # torch's unpickler allows its own types, OrderedDict and protocol 2's bytes encoding
    non_torch = {g for g in found if not g.startswith('torch.')
                 and g not in ('collections.OrderedDict', '_codecs.encode')}
    assert non_torch <= allowed, non_torch - allowed
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in non_torch


def test_unknown_settings_keys(trained, synthetic_ade20k, tmp_path):
    data = data_root_options(synthetic_ade20k)
    # --cfg-options typo in the host segmentor's test_cfg: refused before evaluating
    out = run_failing(['tools/test.py', CONFIG, osp.join(trained, 'iter_6.pth'), '--cfg-options',
                       'model.test_cfg.mdoe=slide', *data])
    assert "model.test_cfg: unknown key 'mdoe'" in out and "Did you mean 'mode'?" in out
    assert 'Iter(test)' not in out and 'Traceback' not in out
    # a hook kwarg that mmengine would only reject at the first checkpoint save
    out = run_failing(['tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w'),
                       '--cfg-options', 'default_hooks.checkpoint.intervl=5', *data])
    assert "default_hooks.checkpoint: unknown key 'intervl'" in out
    assert "Did you mean 'interval'?" in out and 'Iter(train)' not in out
    from mmengine.config import Config

    from mmwinwin.layers import UnknownSettingError
    from mmwinwin.layers.expedite.plugin import ExpediteSettings
    from mmwinwin.registry import MODELS
    from mmwinwin.utils import check_config_settings
    # from a config file: a Win-Win segmentor's test_cfg (tool check and the model itself)
    winwin = osp.join(REPO, 'configs/winwin/'
                      'winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py')
    cfg_file = tmp_path / 'typo.py'
    cfg_file.write_text(f"_base_ = '{winwin}'\nmodel = dict(test_cfg=dict(strid=(4, 4)))\n")
    cfg = Config.fromfile(str(cfg_file))
    with pytest.raises(UnknownSettingError, match="model.test_cfg: unknown key 'strid'.*'stride'"):
        check_config_settings(cfg)
    with pytest.raises(UnknownSettingError, match="unknown key 'strid'.*Did you mean 'stride'"):
        MODELS.build(cfg.model)
    # the Win-Win windows transform, as --cfg-options would set it
    cfg = Config.fromfile(winwin)
    step = [s['type'] for s in cfg.train_dataloader.dataset.pipeline].index('WinWinWindows')
    cfg.merge_from_dict({f'train_dataloader.dataset.pipeline.{step}.num_window': 3})
    with pytest.raises(UnknownSettingError, match=r"WinWinWindows\): unknown key 'num_window'.*"
                                                  "Did you mean 'num_windows'"):
        check_config_settings(cfg)
    # Expedite settings and the flow model's windows / test_cfg
    with pytest.raises(UnknownSettingError, match="expedite: unknown key 'alpah'.*'alpha'"):
        ExpediteSettings.build(dict(alpah=2, cluster_grid=(2, 2)))
    flow = Config.fromfile(osp.join(
        REPO, 'configs/winwin_flow/winwin-2x4_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py'))
    for key, typo, fix in (('windows', 'margn', 'margin'), ('test_cfg', 'tile_sise', 'tile_size')):
        model = flow.model.copy()
        model[key] = {**(model.get(key) or {}), typo: 1}
        with pytest.raises(UnknownSettingError, match=f"{key}: unknown key '{typo}'.*'{fix}'"):
            MODELS.build(model)
    # every shipped config passes the start-up check
    import glob
    for path in glob.glob(osp.join(REPO, 'configs/*/*.py')):
        if '_base_' not in path:
            check_config_settings(Config.fromfile(path))


def test_safe_loader_leaves_the_process_wide_allow_list_as_it_was(tmp_path):
    """mmwinwin allows its few extra types for its own loads only (torch's ``safe_globals``
    as a context): torch's process-wide allow-list is the same before and after, so a plain
    ``torch.load`` elsewhere in the process behaves as it would without mmwinwin."""
    import pickle

    from mmengine.logging import HistoryBuffer

    import mmwinwin  # noqa: F401
    from mmwinwin.utils.checkpoint import load_checkpoint
    path = str(tmp_path / 'runner_like.pth')
    torch.save({'message_hub': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])}}, path)
    before = set(map(repr, torch.serialization.get_safe_globals()))
    assert load_checkpoint(path)['message_hub']['loss'].mean() == 1.5
    assert load_checkpoint(path)['message_hub']['loss'].mean() == 1.5
    assert set(map(repr, torch.serialization.get_safe_globals())) == before
    with pytest.raises(pickle.UnpicklingError):  # torch's own default, untouched
        torch.load(path, weights_only=True)
