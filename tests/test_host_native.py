"""Host-native: every config family runs under mmseg's and mmdet's own tools, and
``import mmwinwin`` changes nothing outside mmwinwin.

* One config of every family trains 2 iterations through the host's shipped
  ``tools/train.py`` and is evaluated through its ``tools/test.py`` (``host_tools_driver.py``,
  one subprocess, configs taken as they are plus a user's ``--cfg-options``).
* mmwinwin's own ``tools/train.py`` gives the same weights, bit for bit.
* A checkpoint whose pickle runs a command is refused by both tools' ``test.py``: the configs
  declare ``SafeCheckpointLoadingHook``, so the host tool loads weights-only too.
* Importing mmwinwin (a fresh interpreter) leaves mmengine's checkpoint loaders and torch's
  safe globals exactly as they were.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from host_tools_driver import FAMILIES, make_data

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def host_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp('host_tools')
    make_data(str(work))
    result = work / 'result.json'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.pop('PYTHONPATH', None)  # as a user runs the host tools: mmwinwin installed, nothing else
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tests', 'host_tools_driver.py'),
                           str(work), str(result)], cwd=str(work), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and result.is_file(), (proc.stdout + proc.stderr)[-6000:]
    return json.loads(result.read_text())


def test_the_driver_imports_mmwinwin_only_through_the_configs(host_runs):
    assert host_runs['mmwinwin_imported_before'] is False


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_trains_and_tests_under_the_host_tools(host_runs, family):
    res = host_runs[family]
    assert res['train']['ok'], res['train']
    assert res['checkpoint'], f'{family}: no iter_2.pth'
    assert res['test']['ok'], res['test']
    assert res['metrics_logged'] == FAMILIES[family][3], res


def test_own_tools_give_the_host_tools_weights_bit_for_bit(host_runs):
    assert host_runs['own_train']['ok'], host_runs['own_train']
    host = torch.load(host_runs['winwin_seg_phase']['checkpoint'], map_location='cpu',
                      weights_only=False)
    own = torch.load(host_runs['own_checkpoint'], map_location='cpu', weights_only=False)
    assert host['meta']['iter'] == own['meta']['iter'] == 2
    assert host['state_dict'].keys() == own['state_dict'].keys()
    for key, value in host['state_dict'].items():
        assert torch.equal(value, own['state_dict'][key]), key
    for a, b in zip(host['optimizer']['state'].values(), own['optimizer']['state'].values()):
        for name in a:
            assert torch.equal(torch.as_tensor(a[name]), torch.as_tensor(b[name])), name


def test_payload_checkpoint_is_refused_by_both_tools(host_runs):
    assert host_runs['payload_ran'] is False
    for key in ('payload_host', 'payload_own'):
        res = host_runs[key]
        assert not res['ok'], res
        assert host_runs['payload_path'] in res['error'], res
        assert 'allow' in res['error'] and 'weights_only=False' not in res['error'], res


IMPORT_CHECK = r'''
import sys, torch
# torch registers safe globals of its own when these load lazily (DTensor, dynamo's _DimRange);
# mmwinwin's imports reach them, so they load first and only what mmwinwin adds is compared
import torch.distributed.tensor, torch._dynamo
from mmengine.runner import checkpoint as ck
def state():
    return (dict(ck.CheckpointLoader._schemes), ck.load_from_local, ck.load_from_http,
            set(map(repr, torch.serialization.get_safe_globals())))  # (torch keeps no order)
before = state()
import mmwinwin, mmwinwin.utils.checkpoint, mmwinwin.utils.runner, mmwinwin.utils.settings
from mmwinwin.utils.checkpoint import load_checkpoint
assert 'mmwinwin.models' in sys.modules and 'mmwinwin.engine.hooks' in sys.modules
after = state()
names = ('CheckpointLoader schemes', 'load_from_local', 'load_from_http', 'torch safe globals')
changed = [n for n, a, b in zip(names, before, after) if a != b]
print('CHANGED', changed)
# loading safely on purpose changes nothing either, once it returns
torch.save({'state_dict': {'w': torch.ones(1)}}, sys.argv[1])
assert load_checkpoint(sys.argv[1])['state_dict']['w'].item() == 1.0
print('CHANGED_AFTER_LOAD', [n for n, a, b in zip(names, before, state()) if a != b])
'''


def test_import_mmwinwin_changes_nothing_outside_mmwinwin(tmp_path):
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', IMPORT_CHECK,
                           str(tmp_path / 'c.pth')], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'CHANGED []' in out and 'CHANGED_AFTER_LOAD []' in out, out[-3000:]


def test_safe_loading_context_restores_what_was_there():
    from mmengine.runner import checkpoint as ck
    from mmwinwin.utils import checkpoint as ours
    before = (dict(ck.CheckpointLoader._schemes), ck.load_from_local, ck.load_from_http)
    with ours.safe_checkpoint_loading():
        inside = (dict(ck.CheckpointLoader._schemes), ck.load_from_local)
        assert inside[1] is ours._load_from_local and inside[0][''] is ours._load_from_local
        assert ck.CheckpointLoader._schemes['https://'] is ours._load_from_http
        with ours.safe_checkpoint_loading():  # nests
            pass
        assert (dict(ck.CheckpointLoader._schemes), ck.load_from_local) == inside
    assert (dict(ck.CheckpointLoader._schemes), ck.load_from_local, ck.load_from_http) == before


def test_safe_loading_hook_covers_the_loading_and_restores_before_the_loop(tmp_path,
                                                                          synthetic_ade20k):
    """The hook of the configs: safe loaders while the Runner loads, mmengine's own again once
    the training loop starts, and after the run."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmengine.runner import checkpoint as ck

    from mmwinwin.utils import checkpoint as ours
    seen = {}

    class Probe(Hook):
        def before_train(self, runner):
            seen['loop'] = ck.load_from_local

    cfg = Config.fromfile(osp.join(REPO, 'configs', 'rope_vit',
                                   'upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x128.py'))
    cfg.work_dir = str(tmp_path)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = synthetic_ade20k
    runner = Runner.from_cfg(cfg)
    runner.register_hook(Probe(), priority='LOWEST')
    before = ck.load_from_local
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SafeCheckpointLoadingHook')
    hook.before_run(runner)
    assert ck.load_from_local is ours._load_from_local
    runner.call_hook('before_train')
    assert seen['loop'] is before and ck.load_from_local is before
    hook.after_run(runner)
    assert ck.load_from_local is before
