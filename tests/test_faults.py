"""Faults survived (issue 25), one process: SIGTERM (preemption), a checkpoint save that fails
part-way, a SIGKILL while a checkpoint is being written inside the Win-Win full-image phase;
the run that goes through all of them, resumed each time with ``--resume`` (no path), ends
with the weights, buffers and optimizer state of an uninterrupted run, bit for bit.

One chain of runs in one work folder (a module fixture), checked by the tests below:

1. a fresh run gets SIGTERM once it has logged iteration 1: it finishes the iteration, saves
   a checkpoint and exits 0 (``PreemptionHook``);
2. ``--resume`` under a file-size limit smaller than a checkpoint: its next save fails
   part-way (EFBIG, as a full disk fails with ENOSPC); the error names the file and the free
   space, and the previous checkpoint and ``last_checkpoint`` are untouched;
3. ``--resume``, killed (SIGKILL, whole process group) half-way through writing
   ``iter_6.pth``, after the full-image iteration 6 (``MMWINWIN_TEST_PAUSE_IN_SAVE``);
4. ``--resume`` to the end: it starts from ``iter_4.pth``, never from the half-written file.

The longer, random version (20 kills at random moments): tools/analysis_tools/fault_injection.py.
"""
from __future__ import annotations

import errno
import glob
import os
import os.path as osp
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, run_tool_in_process

TINY = 'configs/winwin/winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py'


def train_options(root: str) -> list[str]:
    """6 iterations (the 5th and 6th on whole images: the phase of the last third), a
    checkpoint every 2, 2 dataloader workers."""
    return ['--cfg-options', *[f'{s}_dataloader.dataset.data_root={root}'
                               for s in ('train', 'val', 'test')],
            'randomness.seed=0', 'randomness.deterministic=True', 'train_cfg.max_iters=6',
            'train_cfg.val_interval=1000', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'train_dataloader.num_workers=2']


def tool_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    env.update(extra)
    return env


def start_tool(args: list[str], out: str, env: dict | None = None) -> subprocess.Popen:
    """``python tools/...`` in its own process group (so the test can kill it with its
    dataloader workers, as when a machine goes away)."""
    with open(out, 'w') as f:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env or tool_env(),
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, proc: subprocess.Popen, out: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f'exited {proc.returncode} too early:\n{open(out).read()[-4000:]}')
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f'timed out:\n{open(out).read()[-4000:]}')
        time.sleep(0.02)


def run_logs(work_dir: str) -> str:
    return ''.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def tensors_equal(a, b, where: str = '') -> list[str]:
    """Paths under which two nested checkpoint structures differ."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return [where + ' (keys)']
        return [d for k in a for d in tensors_equal(a[k], b[k], f'{where}.{k}')]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [where + ' (length)']
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in tensors_equal(x, y, f'{where}.{i}')]
    return [] if a == b else [where]


def assert_same_training_state(path_a: str, path_b: str) -> None:
    a = torch.load(path_a, map_location='cpu', weights_only=False)
    b = torch.load(path_b, map_location='cpu', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter']
    assert any('running_var' in k for k in a['state_dict'])  # buffers are compared too
    for key in ('state_dict', 'optimizer', 'param_schedulers'):
        differ = tensors_equal(a[key], b[key], key)
        assert not differ, f'{len(differ)} entries differ, e.g. {differ[:5]}'


@pytest.fixture(scope='module', autouse=True)
def same_threads_as_the_tools():
    """Some runs of the chain are in this process (``run_tool_in_process``), the others in
    subprocesses with ``tool_env``'s OMP_NUM_THREADS; bit-exactness holds for one thread
    count, and this process's count is otherwise whatever earlier tests left (2 on 2 cores
    by default), so this module runs with the tools' count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(int(tool_env()['OMP_NUM_THREADS']))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def ade20k_wide(tmp_path_factory) -> str:
    from mmwinwin.datasets.synthetic import generate_ade20k
    root = str(tmp_path_factory.mktemp('faults_ade20k'))
    return generate_ade20k(root, num_train=4, num_val=1, img_size=(128, 256))


@pytest.fixture(scope='module')
def reference(ade20k_wide, tmp_path_factory) -> str:
    """The uninterrupted run, started exactly as the interrupted runs are (``start_tool``:
    same environment, thread count included; bit-exactness holds within one set-up)."""
    work = str(tmp_path_factory.mktemp('reference'))
    out = osp.join(work, 'reference.out')
    proc = start_tool(['tools/train.py', TINY, '--work-dir', work, *train_options(ade20k_wide)],
                      out)
    assert proc.wait(timeout=300) == 0, read(out)[-4000:]
    return osp.join(work, 'iter_6.pth')


@pytest.fixture(scope='module')
def chain(ade20k_wide, tmp_path_factory) -> dict:
    from mmwinwin.engine.hooks import CheckpointWriteError
    tmp = str(tmp_path_factory.mktemp('faults'))
    work = osp.join(tmp, 'work')
    args = ['tools/train.py', TINY, '--work-dir', work, *train_options(ade20k_wide)]
    pointer = osp.join(work, 'last_checkpoint')
    seen: dict = {}

    # 1. SIGTERM once iteration 1 is logged
    out = osp.join(tmp, 'sigterm.out')
    proc = start_tool(args, out)
    wait_until(lambda: 'Iter(train) [1/6]' in run_logs(work), proc, out)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    seen['sigterm_rc'] = proc.wait(120)
    seen['sigterm_seconds'] = time.monotonic() - sent
    seen['sigterm_out'] = read(out)
    seen['sigterm_pointer'] = read(pointer).strip() if osp.isfile(pointer) else None

    # 2. --resume, the next save fails part-way (a file-size limit below a checkpoint's size)
    good = read(pointer)
    with open(good.strip(), 'rb') as f:
        good_bytes = f.read()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(good_bytes) // 2, hard))
    try:
        run_tool_in_process([*args, '--resume'], REPO, work)
        seen['write_error'] = None
    except CheckpointWriteError as err:
        seen['write_error'] = err
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    seen['after_error_pointer'] = read(pointer)
    seen['good_pointer'] = good
    with open(good.strip(), 'rb') as f:
        seen['good_intact'] = f.read() == good_bytes
    seen['partials_after_error'] = glob.glob(osp.join(work, '.*.partial'))

    # 3. --resume, SIGKILL half-way through writing iter_6.pth (after full-image iteration 6)
    marker = osp.join(tmp, 'writing_iter_6')
    out = osp.join(tmp, 'sigkill.out')
    proc = start_tool([*args, '--resume'], out,
                      tool_env(MMWINWIN_TEST_PAUSE_IN_SAVE=f'iter_6.pth:{marker}'))
    wait_until(lambda: osp.exists(marker), proc, out)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)
    seen['killed_out'] = read(out)
    seen['killed_files'] = sorted(os.listdir(work))
    seen['killed_pointer'] = read(pointer).strip()

    # 4. --resume to the end
    seen['final_log'] = run_tool_in_process([*args, '--resume'], REPO, work)
    seen['final'] = osp.join(work, 'iter_6.pth')
    seen['work'] = work
    return seen


def test_sigterm_saves_and_exits_0(chain):
    """Preemption: the iteration finishes, a checkpoint is written, exit 0 at once."""
    out = chain['sigterm_out']
    assert chain['sigterm_rc'] == 0, out[-4000:]
    assert 'PreemptionHook: SIGTERM received' in out, out[-4000:]
    assert chain['sigterm_seconds'] < 60, chain['sigterm_seconds']
    stopped = chain['sigterm_pointer']
    assert stopped and osp.basename(stopped) in ('iter_1.pth', 'iter_2.pth', 'iter_3.pth'), stopped
    assert 'Iter(train) [6/6]' not in out


def test_failed_save_keeps_the_last_good_checkpoint(chain):
    err = chain['write_error']
    assert err is not None, 'the save under the file-size limit did not fail'
    assert err.errno == errno.EFBIG
    assert chain['work'] in str(err) and 'free of' in str(err), str(err)
    assert chain['after_error_pointer'] == chain['good_pointer']
    assert chain['good_intact']
    assert not chain['partials_after_error']


def test_sigkill_while_writing_a_checkpoint(chain):
    """Killed half-way through iter_6.pth (the full-image phase ran): only a hidden partial
    file exists, last_checkpoint names iter_4.pth, and --resume starts there."""
    assert 'full-image phase: iteration 4 onwards' in chain['killed_out']
    files = chain['killed_files']
    assert 'iter_6.pth' not in files and '.iter_6.pth.partial' in files, files
    assert osp.basename(chain['killed_pointer']) == 'iter_4.pth'
    assert 'resumed epoch: 0, iter: 4' in chain['final_log']


def test_faults_end_like_an_uninterrupted_run(chain, reference):
    assert_same_training_state(reference, chain['final'])


def test_atomic_write_on_a_full_disk(tmp_path, monkeypatch):
    """A write failing with ENOSPC part-way leaves the old file, no temporary file, and says
    where and how much space is free."""
    from mmwinwin.engine.hooks import CheckpointWriteError, atomic_checkpoint_hook as mod

    target = tmp_path / 'iter_2.pth'
    target.write_bytes(b'old checkpoint')

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    real_open = open
    monkeypatch.setattr(mod, 'open', lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False)
    with pytest.raises(CheckpointWriteError) as info:
        mod.atomic_write(target, b'x' * 5000)
    assert info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value) and 'free of' in str(info.value)
    assert target.read_bytes() == b'old checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_2.pth']
