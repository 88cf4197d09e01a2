"""What ``tools/train.py`` and ``tools/test.py`` share: turning command-line flags into
a checked mmengine config, distributed set-up that also works on CPU (gloo), and a
strict checkpoint load with an error that names the mismatching keys.

None of it edits what a config needs to run: hooks and the window transform's patch size
are in the configs themselves, so mmseg's and mmdet's own tools run them as they are."""
from __future__ import annotations

import contextlib
import difflib
import os
import os.path as osp
from typing import Any, Mapping

import torch
from mmengine.config import Config, ConfigDict

from ..layers.vit.checkpoint import CheckpointMismatchError

__all__ = ['tool_parser', 'parse_tool_args', 'check_cfg_options', 'apply_common_flags', 'setup_cpu_distributed',
           'teardown_distributed', 'distributed_session', 'load_checkpoint_strict', 'CheckpointMismatchError']


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, [str(o) for o in options], n=3)
    return f' Did you mean {close}?' if close else f' Available: {sorted(map(str, options))[:20]}'


def check_cfg_options(cfg: Config, options: Mapping[str, Any]) -> None:
    """Refuse ``--cfg-options`` keys whose *parent* does not exist in the config.

    A new leaf under an existing dict is allowed (e.g. a backbone kwarg the config did
    not spell out; the module's constructor validates it), but a typo in the path
    (``model.backbon.depth``) would otherwise be silently added and ignored.
    """
    for dotted in options:
        node: Any = cfg
        parts = dotted.split('.')
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise KeyError(f'--cfg-options {dotted}: index {part} is out of range '
                                   f'(the list at {".".join(parts[:depth]) or "top"} has {len(node)} items).')
                node = node[int(part)]
                continue
            if not isinstance(node, (dict, Config, ConfigDict)) or part not in node:
                where = '.'.join(parts[:depth]) or 'the top level'
                keys = list(node.keys()) if isinstance(node, (dict, Config, ConfigDict)) else []
                raise KeyError(f'--cfg-options {dotted}: the config has no key {part!r} at '
                               f'{where}.{_suggest(part, keys)}')
            node = node[part]


def tool_parser(description: str, work_dir_help: str, cfg_options_example: str):
    """The argument set-up ``tools/train.py`` and ``tools/test.py`` share: ``config``,
    ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``. A tool adds its own
    arguments to the returned parser and parses with :func:`parse_tool_args`."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override config keys, e.g. {cfg_options_example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_tool_args(parser):
    """Parse, and export ``LOCAL_RANK`` for launchers that pass ``--local-rank``."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_common_flags(cfg: Config, args) -> Config:
    """``--cfg-options``, ``--work-dir`` and ``--launcher``, the OpenMMLab way."""
    if getattr(args, 'cfg_options', None):
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg)
    return cfg


def _restart_attempt_store(timeout) -> dict:
    """Under torch.distributed.run, the process group's store keys of this restart attempt
    (``TORCHELASTIC_RESTART_COUNT``). The launcher's store outlives a restart
    (``--max-restarts``, tools/dist_train.sh ``MAX_RESTARTS``) and still holds the first
    attempt's keys, so a restarted gloo group set up from the environment alone reads the
    dead processes' addresses and fails ("connectFullMesh ... Connection refused").
    Returns ``init_process_group`` arguments; none outside torch.distributed.run."""
    if 'TORCHELASTIC_RESTART_COUNT' not in os.environ:
        return {}
    import torch.distributed as dist
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    agent_store = os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True'
    store = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), world,
                          is_master=not agent_store and rank == 0, timeout=timeout)
    prefix = f'mmwinwin/attempt_{os.environ["TORCHELASTIC_RESTART_COUNT"]}'
    return dict(store=dist.PrefixStore(prefix, store), rank=rank, world_size=world)


def setup_cpu_distributed(cfg: Config) -> None:
    """mmengine's launcher calls ``torch.cuda.set_device`` and wraps the model in DDP
    with ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. On CPU, start
    the process group with gloo here (the Runner then skips its own set-up) and wrap
    the model in DDP without device ids, with ``CPUDistributedDataParallel``, which turns
    every ``SyncBN`` into :class:`~mmwinwin.layers.norm.CPUSyncBatchNorm` (batch statistics
    all-reduced over gloo) since DDP refuses ``nn.SyncBatchNorm`` on CPU."""
    import torch.distributed as dist
    if 'RANK' not in os.environ:
        raise RuntimeError('--launcher pytorch needs torch.distributed.run (RANK, WORLD_SIZE '
                           'unset); use tools/dist_train.sh / tools/dist_test.sh.')
    if not dist.is_initialized():
        import datetime
        timeout = datetime.timedelta(
            seconds=cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800))
        dist.init_process_group(backend='gloo', timeout=timeout,
                                **_restart_attempt_store(timeout))
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg', None) or ConfigDict(type='MMDistributedDataParallel')
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        # DDP refuses nn.SyncBatchNorm (SyncBN) in a CPU module; this wrapper converts it
        # to CPUSyncBatchNorm (statistics all-reduced over gloo) first.
        wrapper.type = 'mmwinwin.CPUDistributedDataParallel'
    wrapper.device_ids = None  # CPU modules: DDP refuses device ids
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def teardown_distributed(succeeded: bool = True) -> None:
    """End a torch.distributed run cleanly: free what still holds the process group,
    wait for every rank, then destroy the group so its threads are joined before the
    interpreter exits.

    Left to interpreter shutdown, the gloo process group (kept alive by the DDP wrapper's
    reducer) is destroyed while its threads are still joinable, and one rank then aborts
    after training with ``terminate called without an active exception`` (SIGABRT,
    exit code -6) although training succeeded. Call this after the runner is released
    (see :func:`distributed_session`). After a failure the barrier is skipped (the other
    ranks may never reach it)."""
    import gc

    import torch.distributed as dist
    gc.collect()  # the DDP wrapper and its reducer hold the process group
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if succeeded:
            dist.barrier()
    finally:
        dist.destroy_process_group()
        gc.collect()


@contextlib.contextmanager
def distributed_session():
    """``with distributed_session(): run(cfg)`` -- build and use the Runner inside
    ``run`` (so it is released when ``run`` returns), then tear torch.distributed down
    cleanly with :func:`teardown_distributed`, on success and on error alike."""
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        teardown_distributed(succeeded)


def load_checkpoint_strict(model: torch.nn.Module, filename: str) -> dict:
    """Load a checkpoint into ``model``, refusing any missing, unexpected or
    wrongly-shaped key (mmengine's default only logs them and tests garbage)."""
    from mmengine.model import is_model_wrapper

    from .checkpoint import load_checkpoint
    if not osp.isfile(filename) and '://' not in filename:
        raise FileNotFoundError(f'Checkpoint {filename!r} does not exist.')
    checkpoint = load_checkpoint(filename, map_location='cpu')  # weights-only, allow-list
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if is_model_wrapper(model):
        model = model.module
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state and hasattr(state[k], 'shape') and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f'{len(shapes)} shape mismatches, e.g. {shapes[:5]}')
        if missing:
            parts.append(f'{len(missing)} keys missing from the checkpoint, e.g. {missing[:5]}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys in the checkpoint, e.g. {unexpected[:5]}')
        raise CheckpointMismatchError(
            f'Checkpoint {filename} does not match the model built from the config: '
            + '; '.join(parts) + '. Use the config the checkpoint was trained with, or convert '
            'the checkpoint (tools/model_converters/).')
    model.load_state_dict(state, strict=True)
    return checkpoint
