"""Faults survived (issue 25), two CPU processes (gloo): two nodes on one machine train like one
node with as many processes, and a rank that dies does not hang the other: with
``MAX_RESTARTS=1`` tools/dist_train.sh restarts the group, which resumes (``--resume``) and
ends with the same weights as the uninterrupted run.

* two launchers (``NNODES=2``, ``NODE_RANK=0/1``, one process each) = the uninterrupted run;
* one launcher with 2 processes, ``MAX_RESTARTS=1``, a 30 s process-group timeout
  (``env_cfg.dist_cfg.timeout``): rank 1 is SIGKILLed while rank 0 is half-way through
  writing ``iter_4.pth``; rank 0 finishes that save, fails on its next collective, the group
  is restarted and resumes from ``iter_4.pth``. Its final checkpoint equals the two-node run's.
"""
from __future__ import annotations

import os
import os.path as osp
import signal
import subprocess
import time

import pytest

from conftest import REPO, free_port
from test_faults import (TINY, assert_same_training_state, read, tool_env, train_options,
                         wait_until)


def start_dist(args: list[str], out: str, **env) -> subprocess.Popen:
    with open(out, 'w') as f:
        return subprocess.Popen(['bash', 'tools/dist_train.sh', TINY, *args], cwd=REPO,
                                env=tool_env(**env), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(proc: subprocess.Popen, out: str, timeout: float = 300) -> str:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f'timed out:\n{read(out)[-6000:]}')
    assert proc.returncode == 0, read(out)[-6000:]
    return read(out)


def rank_pid(tag: str, rank: int) -> int | None:
    """The training process of ``rank`` among the processes started with ``FAULT_TAG=tag``
    (not its dataloader workers, whose parent is that process)."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            environ = open(f'/proc/{entry}/environ', 'rb').read().split(b'\0')
            ppid = int(open(f'/proc/{entry}/stat').read().rsplit(')', 1)[1].split()[1])
        except OSError:
            continue
        if f'FAULT_TAG={tag}'.encode() in environ and f'RANK={rank}'.encode() in environ:
            found[int(entry)] = ppid
    roots = [pid for pid, ppid in found.items() if ppid not in found]
    return roots[0] if len(roots) == 1 else None


@pytest.fixture(scope='module')
def ade20k_wide(tmp_path_factory) -> str:
    from mmwinwin.datasets.synthetic import generate_ade20k
    root = str(tmp_path_factory.mktemp('faults_dist_ade20k'))
    return generate_ade20k(root, num_train=4, num_val=1, img_size=(128, 256))


def test_two_nodes_and_a_restarted_group(ade20k_wide, tmp_path):
    opts = train_options(ade20k_wide)
    # two nodes on this machine, one process each
    two_nodes = str(tmp_path / 'two_nodes')
    port = free_port()
    nodes = [start_dist(['1', '--work-dir', two_nodes, *opts], str(tmp_path / f'node{n}.out'),
                        NNODES='2', NODE_RANK=str(n), PORT=port, MASTER_ADDR='127.0.0.1')
             for n in (0, 1)]
    for n, proc in enumerate(nodes):
        finish(proc, str(tmp_path / f'node{n}.out'))

    # one node, two processes; rank 1 dies while rank 0 writes iter_4.pth; one restart
    work, out = str(tmp_path / 'restarted'), str(tmp_path / 'restarted.out')
    marker, tag = str(tmp_path / 'writing_iter_4'), f'{os.getpid()}-{time.monotonic()}'
    proc = start_dist(['2', '--work-dir', work, *opts, 'env_cfg.dist_cfg.timeout=30'], out,
                      MAX_RESTARTS='1', PORT=free_port(), FAULT_TAG=tag,
                      MMWINWIN_TEST_PAUSE_IN_SAVE=f'iter_4.pth:{marker}:60')
    wait_until(lambda: osp.exists(marker), proc, out)
    victim = rank_pid(tag, 1)
    assert victim, 'rank 1 not found'
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    with open(marker + '.go', 'w'):
        pass  # rank 0 finishes writing iter_4.pth
    log = finish(proc, out)
    assert time.monotonic() - killed < 240
    assert 'resumed epoch: 0, iter: 4' in log, log[-6000:]
    assert_same_training_state(osp.join(two_nodes, 'iter_6.pth'), osp.join(work, 'iter_6.pth'))
