"""Reliability of training (issue 10, section 2): independent window streams per worker
and rank, exact resume, rank checks that cover buffers, SyncBN on CPU."""
from __future__ import annotations

import functools
import multiprocessing
import os
import os.path as osp
import pickle
import traceback

import numpy as np
import pytest

from mmwinwin.utils.checkpoint import load_checkpoint_path
import torch
import torch.distributed as dist

from conftest import free_port, run_tool

WINWIN_TINY = 'configs/winwin/winwin-2x4_upernet_rope-vit-tiny_1xb2-20i_synthetic-ade20k-128x256.py'


# --------------------------------------------------------------------------- helpers
def _rank_main(fn, rank: int, world: int, port: str, out_dir: str) -> None:
    try:
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                world_size=world)
        try:
            result = fn(rank)
        finally:
            dist.destroy_process_group()
        with open(osp.join(out_dir, f'rank{rank}.pkl'), 'wb') as f:
            pickle.dump(result, f)
    except BaseException:  # report the child's traceback to the test
        with open(osp.join(out_dir, f'rank{rank}.err'), 'w') as f:
            f.write(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def run_ranks(fn, tmp_path, world: int = 2, timeout: int = 120) -> list:
    """Run ``fn(rank)`` in ``world`` fresh (spawned) processes joined by a gloo process
    group on a free port; return their results in rank order. Not forked: a fork of the
    test process after earlier tests started threads (torch's pools, gloo) can hang."""
    ctx = multiprocessing.get_context('spawn')
    port, out_dir = free_port(), str(tmp_path)
    os.makedirs(out_dir, exist_ok=True)
    procs = [ctx.Process(target=_rank_main, args=(fn, r, world, port, out_dir))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    errors = [open(osp.join(out_dir, f'rank{r}.err')).read() for r in range(world)
              if osp.isfile(osp.join(out_dir, f'rank{r}.err'))]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not errors, '\n'.join(errors)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [pickle.load(open(osp.join(out_dir, f'rank{r}.pkl'), 'rb')) for r in range(world)]


@pytest.fixture(scope='module')
def synthetic_ade20k_wide(tmp_path_factory) -> str:
    from mmwinwin.datasets.synthetic import generate_ade20k
    root = str(tmp_path_factory.mktemp('synthetic_ade20k_wide'))
    return generate_ade20k(root, num_train=6, num_val=2, img_size=(128, 256), seed=0)


def _data_root(root: str) -> list[str]:
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


# ------------------------------------------------- 1. windows across workers and ranks
class _WindowsOfBlankImages(torch.utils.data.Dataset):
    def __init__(self, transform, n: int = 8):
        self.transform, self.n = transform, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        results = self.transform.transform({'img': np.zeros((128, 256, 3), np.uint8)})
        return results['winwin_windows']


def _unbatched(batch):
    return batch[0]


def _window_streams(rank: int) -> dict:
    """The window transform's stream on this rank, twice from the same run seed (flow pairs
    use the same transform, on frame 1)."""
    from mmwinwin.registry import TRANSFORMS

    out = {}
    for attempt in range(2):  # the same run seed twice: the same streams
        torch.manual_seed(0)  # what mmengine's set_random_seed(0) does on every rank
        t = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=4,
                                  patch_size=16))
        img = {'img': np.zeros((128, 256, 3), np.uint8)}
        out[f'transform{attempt}'] = [t.transform(dict(img))['winwin_windows'] for _ in range(20)]
        torch.manual_seed(0)
        t = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=2,
                                  patch_size=16))
        pair = {'img1': np.zeros((128, 256, 3), np.uint8),
                'img2': np.zeros((128, 256, 3), np.uint8)}
        out[f'flow{attempt}'] = [t.transform(dict(pair))['winwin_windows'] for _ in range(20)]
    return out


def test_windows_repeat_across_workers_and_ranks(tmp_path):
    """Window streams are reproducible, yet independent per dataloader worker and per
    rank: same seed, different workers / ranks -> different windows."""
    from mmwinwin.registry import TRANSFORMS

    def draw(num_workers: int) -> list:
        t = TRANSFORMS.build(dict(type='WinWinWindows', num_windows=2, window_size=4,
                                  patch_size=16, seed=0))
        loader = torch.utils.data.DataLoader(_WindowsOfBlankImages(t), batch_size=1,
                                             num_workers=num_workers, collate_fn=_unbatched)
        return [list(map(tuple, w)) for w in loader]

    two_workers = draw(2)
    assert two_workers == draw(2)  # reproducible
    # worker 0 serves items 0, 2, 4, 6 and worker 1 items 1, 3, 5, 7, each its own stream
    same = sum(two_workers[i] == two_workers[i + 1] for i in range(0, 8, 2))
    assert same <= 1, f'{same}/4 pairs of workers drew identical windows: {two_workers}'
    assert draw(0) == draw(0)

    # two ranks with the same run seed (mmengine's default: diff_rank_seed=False)
    rank0, rank1 = run_ranks(_window_streams, tmp_path)
    for r in (rank0, rank1):
        assert r['transform0'] == r['transform1'] and r['flow0'] == r['flow1']  # reproducible
    for key in ('transform0', 'flow0'):
        same = sum(a == b for a, b in zip(rank0[key], rank1[key]))
        assert same <= 2, f'{key}: both ranks drew the same windows on {same}/20 draws'


# ------------------------------------------------------------------ 2. exact resume
WINWIN_FLOW_TINY = ('configs/winwin_flow/'
                    'winwin-2x4_crocoflow-vit-tiny_1xb2-40i_synthetic-flow-128x192.py')


@pytest.fixture(scope='module')
def synthetic_flow(tmp_path_factory) -> str:
    from mmwinwin.datasets.synthetic.flow import write_sintel_layout
    root = str(tmp_path_factory.mktemp('synthetic_flow'))
    write_sintel_layout(osp.join(root, 'train'), 4, size=(96, 128), seed=0)
    write_sintel_layout(osp.join(root, 'val'), 2, size=(96, 128), seed=1)
    return root


@pytest.mark.parametrize('task,num_workers', [('segmentation', 0), ('segmentation', 2),
                                              ('flow', 0)])
def test_resume_is_exact(request, tmp_path, task, num_workers):
    """4 iterations straight == 2 iterations + ``--resume`` for 2 more, bit for bit: every
    weight and buffer (BatchNorm statistics included), with head dropout active, window
    streams of the window transform in the main process or in dataloader workers."""
    if task == 'segmentation':
        config, root = WINWIN_TINY, request.getfixturevalue('synthetic_ade20k_wide')
        data = _data_root(root)
    else:
        config, root = WINWIN_FLOW_TINY, request.getfixturevalue('synthetic_flow')
        data = [f'train_dataloader.dataset.data_root={root}/train',
                f'val_dataloader.dataset.data_root={root}/val',
                f'test_dataloader.dataset.data_root={root}/val', 'param_scheduler.0.end=4']
    opts = ['--cfg-options', *data, 'randomness.seed=0',
            'randomness.deterministic=True', 'train_cfg.max_iters=4',
            'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
            'default_hooks.checkpoint.max_keep_ckpts=3',
            'default_hooks.logger.interval=1', f'train_dataloader.num_workers={num_workers}']
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    out_a = run_tool(['tools/train.py', config, '--work-dir', straight, *opts])
    os.makedirs(resumed)
    first_half = osp.join(resumed, 'iter_2.pth')
    with open(osp.join(straight, 'iter_2.pth'), 'rb') as src, open(first_half, 'wb') as dst:
        dst.write(src.read())
    out_b = run_tool(['tools/train.py', config, '--work-dir', resumed, '--resume',
                      first_half, *opts])
    assert 'resumed epoch: 0, iter: 2' in out_b
    a = load_checkpoint_path(osp.join(straight, 'iter_4.pth'))['state_dict']
    b = load_checkpoint_path(osp.join(resumed, 'iter_4.pth'))['state_dict']
    assert a.keys() == b.keys()
    if task == 'segmentation':
        assert any('running_var' in k for k in a)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f'{len(differ)}/{len(a)} weights and buffers differ, e.g. {differ[:5]}'

    def losses(out: str, it: int) -> str:
        import re
        m = re.search(rf'Iter\(train\) \[\s*{it}/4\].*?loss: (\d+\.\d+)', out)
        assert m, out[-3000:]
        return m.group(1)
    assert losses(out_a, 3) == losses(out_b, 3) and losses(out_a, 4) == losses(out_b, 4)


# ------------------------------------------------------- 3. rank checks miss buffers
def _sync_check_rank(work_dir: str, same_data: bool, rank: int):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.bn = torch.nn.BatchNorm2d(4)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            y = self.bn(self.conv(inputs))
            return dict(loss=y.pow(2).mean()) if mode == 'loss' else y

    gen = torch.Generator().manual_seed(0 if same_data else 1 + rank)
    images = [dict(inputs=torch.randn(3, 8, 8, generator=gen)) for _ in range(10)]
    loader = torch.utils.data.DataLoader(images, batch_size=2)
    os.environ['LOCAL_RANK'] = str(rank)
    runner = Runner(
        model=Net(), work_dir=work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=5),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), launcher='pytorch',
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None,
                                        broadcast_buffers=False)),
        custom_hooks=[dict(type='mmwinwin.ParamSyncCheckHook', interval=5)],
        default_hooks=dict(checkpoint=None), randomness=dict(seed=0))
    try:
        runner.train()
    except RuntimeError as err:
        return str(err)
    finally:
        runner.logger.handlers.clear()
    return None


def _train_with_sync_check(work_dir: str, same_data: bool):
    return functools.partial(_sync_check_rank, work_dir, same_data)  # picklable for spawn


def test_rank_checks_miss_buffers(tmp_path):
    """ParamSyncCheckHook compares buffers too (BatchNorm running statistics that differ
    between ranks are named) and reports 1-based iterations."""
    import json

    import mmwinwin  # noqa: F401  (registers the hook)
    drift = str(tmp_path / 'drift')
    errors = run_ranks(_train_with_sync_check(drift, same_data=False), tmp_path / 'a')
    # each rank saw different images, so its BatchNorm statistics are its own; the
    # weights stay in sync through DDP's gradient all-reduce
    report = json.load(open(osp.join(drift, 'param_sync.json')))
    assert report['iter'] == 5 and report['world_size'] == 2
    assert sorted(report['differing']) == ['bn.running_mean', 'bn.running_var']
    for err in errors:
        assert err is not None and 'at iteration 5' in err
        assert 'bn.running_mean' in err and 'bn.running_var' in err and 'conv.weight' not in err

    same = str(tmp_path / 'same')
    assert run_ranks(_train_with_sync_check(same, same_data=True), tmp_path / 'b') == [None, None]
    report = json.load(open(osp.join(same, 'param_sync.json')))
    assert report['iter'] == 5 and report['differing'] == []
    assert 'bn.running_var' in report['buffers']
    assert report['checksums'][0] == report['checksums'][1]


# ---------------------------------------------------------------- 4. SyncBN on CPU
_X = torch.randn(6, 3, 5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
_G = torch.randn(6, 3, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
_W = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64)
_B = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
_SPLIT = (slice(0, 2), slice(2, 6))  # unequal local batches: 2 and 4 images


def _sync_bn_ranks(rank: int) -> dict:
    from mmwinwin.engine import CPUDistributedDataParallel
    from mmwinwin.layers.norm import CPUSyncBatchNorm

    bn = CPUSyncBatchNorm(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.copy_(_W)
        bn.bias.copy_(_B)
    x = _X[_SPLIT[rank]].clone().requires_grad_()
    y = bn(x)
    (y * _G[_SPLIT[rank]]).sum().backward()
    out = dict(y=y.detach(), x_grad=x.grad, w_grad=bn.weight.grad, b_grad=bn.bias.grad,
               running_mean=bn.running_mean.clone(), running_var=bn.running_var.clone(),
               tracked=int(bn.num_batches_tracked))
    # a model with torch's SyncBatchNorm (mmcv's SyncBN) wraps and trains on CPU
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.SyncBatchNorm(3)).double()
    from mmengine.model import BaseModel

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.body(inputs)

    ddp = CPUDistributedDataParallel(Net(), device_ids=None, broadcast_buffers=False)
    ddp(_X[_SPLIT[rank]]).sum().backward()
    out['wrapped_types'] = [type(m).__name__ for m in ddp.module.body]
    out['wrapped_running_mean'] = ddp.module.body[1].running_mean.clone()
    out['wrapped_keys'] = sorted(ddp.module.state_dict())
    return out


def test_sync_bn_on_cpu(tmp_path):
    """CPUSyncBatchNorm on 2 gloo ranks == plain batch norm over the concatenated batch
    (output, running statistics, gradients); CPU DDP runs take it in place of SyncBN."""
    ranks = run_ranks(_sync_bn_ranks, tmp_path)
    # reference: batch norm written out over the whole batch of both ranks
    x = _X.clone().requires_grad_()
    w, b = _W.clone().requires_grad_(), _B.clone().requires_grad_()
    mean = x.mean(dim=(0, 2, 3))
    var = ((x - mean.view(1, 3, 1, 1)) ** 2).mean(dim=(0, 2, 3))
    y = (x - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + 1e-5)
    y = y * w.view(1, 3, 1, 1) + b.view(1, 3, 1, 1)
    (y * _G).sum().backward()
    n = x.numel() / 3
    for rank, got in enumerate(ranks):
        s = _SPLIT[rank]
        torch.testing.assert_close(got['y'], y.detach()[s])
        torch.testing.assert_close(got['x_grad'], x.grad[s])
        torch.testing.assert_close(got['running_mean'], 0.3 * mean.detach())
        torch.testing.assert_close(got['running_var'], 0.7 + 0.3 * var.detach() * n / (n - 1))
        assert got['tracked'] == 1
        assert got['wrapped_types'] == ['Conv2d', 'CPUSyncBatchNorm']
    # each rank holds its local share of the affine gradients (DDP all-reduces them)
    torch.testing.assert_close(ranks[0]['w_grad'] + ranks[1]['w_grad'], w.grad)
    torch.testing.assert_close(ranks[0]['b_grad'] + ranks[1]['b_grad'], b.grad)
    # the synchronised statistics agree across ranks; names are those of BatchNorm
    torch.testing.assert_close(ranks[0]['wrapped_running_mean'], ranks[1]['wrapped_running_mean'])
    assert 'body.1.running_var' in ranks[0]['wrapped_keys']

    # tools select the wrapper for CPU distributed runs
    from mmengine.config import Config

    from mmwinwin.utils import setup_cpu_distributed
    cfg = Config(dict(model=dict()))
    env = dict(os.environ)
    os.environ.update(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=free_port())
    try:
        setup_cpu_distributed(cfg)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        os.environ.clear()
        os.environ.update(env)
    assert cfg.model_wrapper_cfg.type == 'mmwinwin.CPUDistributedDataParallel'
