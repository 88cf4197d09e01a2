"""Shared fixtures: small generated datasets and a runner for the command-line tools."""
from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Prelude of a subprocess that must run with torch alone: importing any OpenMMLab package fails.
WITHOUT_OPENMMLAB = '''
import builtins
real_import = builtins.__import__
def blocked(name, *args, **kwargs):
    if name.split('.')[0] in ('mmseg', 'mmdet', 'mmcv', 'mmengine'):
        raise ImportError('blocked for this test: ' + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = blocked
'''
SHARED_DATA = osp.join(osp.dirname(REPO), 'shared', 'data')


def run_tool(args: list[str], timeout: int = 300, env: dict | None = None) -> str:
    """Run a tools/ script (or a shell script) from the repo root; return its output,
    failing the test with the output when it exits non-zero."""
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
                    OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    full_env.update(env or {})
    cmd = args if args[0] in ('bash',) else [sys.executable] + args
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {proc.returncode}:\n{out[-6000:]}')
    return out


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
    """A work folder holding generated COCO data at ``data/coco_synth`` (the tiny detection
    configs' data root), for runs of tools/train.py and tools/test.py from that folder."""
    from mmwinwin.datasets.synthetic import generate_coco
    work = tmp_path_factory.mktemp('coco')
    generate_coco(str(work / 'data' / 'coco_synth'), num_train=2, num_val=1, seed=0)
    return work


def run_tool_in_process(args: list[str], cwd: str, work_dir: str) -> str:
    """Run a tool script as ``python tools/X.py ARGS`` would, in this process (to save the
    interpreter start-up and imports), from ``cwd``; returns the newest log it wrote under
    ``work_dir``."""
    import glob
    import runpy
    old_argv, old_cwd = sys.argv, os.getcwd()
    before = set(glob.glob(osp.join(work_dir, '*', '*.log')))
    try:
        os.chdir(cwd)
        sys.argv = [str(a) for a in args]
        runpy.run_path(str(args[0]), run_name='__main__')
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    logs = sorted(set(glob.glob(osp.join(work_dir, '*', '*.log'))) - before)
    assert logs, f'no log written under {work_dir}'
    with open(logs[-1]) as f:
        return f.read()


@pytest.fixture(scope='session')
def synthetic_ade20k(tmp_path_factory) -> str:
    """A 6 + 2 image synthetic ADE20K-layout dataset at 128 x 128."""
    from mmwinwin.datasets.synthetic import generate_ade20k
    root = str(tmp_path_factory.mktemp('synthetic_ade20k'))
    return generate_ade20k(root, num_train=6, num_val=2, img_size=(128, 128), seed=0)


def assert_same_losses(got: dict, want: dict, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Two loss dicts of a model (a value may be a list of per-level tensors) agree key by
    key."""
    import torch
    assert set(got) == set(want)
    for k in want:
        a, b = got[k], want[k]
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=k)


def free_port() -> str:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a torch.distributed run
    (a fixed port fails when another run, e.g. a parallel test session, holds it)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def data_root_options(root: str) -> list[str]:
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


def _restore_default_scope_after():
    from mmengine.registry import DefaultScope
    before = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


# Each test, and each test module, ends with the default scope it started with. A Runner
# or ``init_default_scope`` inside a test or a module fixture makes its scope ('mmdet',
# 'mmseg', ...) the current one for the rest of the session, which would send later
# registry look-ups to the wrong host. (Autouse module fixtures are set up before the
# module's other fixtures, so the module guard also covers module-scoped set-ups.)
isolate_default_scope = pytest.fixture(autouse=True)(_restore_default_scope_after)
isolate_default_scope_per_module = pytest.fixture(autouse=True, scope='module')(
    _restore_default_scope_after)


def _cache_host_config_lookups() -> None:
    """mmengine resolves each ``mmseg::`` / ``mmdet::`` base by reading every metafile of the
    host package again (about 0.4 s a base on 2 cores), and for a ``_base_/`` file that no
    metafile lists it does so only to raise ``ValueError`` and fall back to the package's
    config folder. The answer, a path or that error, depends only on the package and the
    file named, so the test session asks once per pair. Loading itself is unchanged."""
    from mmengine.config import config as mm_config
    lookup = mm_config._get_external_cfg_path
    if getattr(lookup, 'cached_for_tests', False):
        return
    answers: dict = {}

    def cached(package_path: str, cfg_file: str) -> str:
        key = (package_path, cfg_file)
        if key not in answers:
            try:
                answers[key] = (True, lookup(package_path, cfg_file))
            except ValueError as err:  # not in a metafile: mmengine then takes the base path
                answers[key] = (False, err)
        found, value = answers[key]
        if not found:
            raise ValueError(*value.args)
        return value

    cached.cached_for_tests = True
    mm_config._get_external_cfg_path = cached


_cache_host_config_lookups()
