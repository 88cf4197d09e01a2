"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]``.

Every config of this project also runs under mmseg's and mmdet's own ``tools/train.py``
(the configs hold everything they need). This one adds, and gives the same weights:

* ``--resume`` without a path resumes from the newest checkpoint in ``work_dir`` that
  loads, skipping a truncated or corrupt newer one (mmengine would fail on it);
* ``--launcher pytorch`` on CPU (gloo; ``tools/dist_train.sh``), where mmengine's launcher
  needs CUDA;
* a start-up check of config keys (``Did you mean ...``) before anything is built;
* weights-only checkpoint loading for the whole run, whether or not the config declares
  ``SafeCheckpointLoadingHook``.
"""
import os

from mmengine.config import Config


def parse_args():
    from mmwinwin.utils import parse_tool_args, tool_parser
    parser = tool_parser('Train an mmwinwin / mmseg / mmdet model',
                         'directory for logs and checkpoints', 'train_cfg.max_iters=100')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in work_dir '
                             'when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    return parse_tool_args(parser)


def main():
    args = parse_args()
    import mmwinwin  # noqa: F401  (registers modules; changes nothing else)
    from mmwinwin.utils import (apply_common_flags, checkpoint_errors_exit, distributed_session,
                                exit_on_unknown_settings, safe_checkpoint_loading)

    cfg = apply_common_flags(Config.fromfile(args.config), args)
    exit_on_unknown_settings(cfg)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper supports '
                             'CUDA/NPU/MLU only); drop --amp to train on CPU.')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        resolve_auto_resume(cfg)
    elif args.resume is not None:
        if not os.path.isfile(args.resume):
            raise SystemExit(f'--resume {args.resume}: no such checkpoint file.')
        cfg.resume = True
        cfg.load_from = args.resume

    with distributed_session(), checkpoint_errors_exit(), safe_checkpoint_loading():
        train(cfg)


def resolve_auto_resume(cfg) -> None:
    """``--resume`` without a path: resume from the newest checkpoint in work_dir that
    loads (a truncated latest one is skipped, with the reason logged), or start afresh
    when there is none (mmwinwin.utils.find_resumable_checkpoint)."""
    from mmwinwin.utils import CorruptCheckpointError, find_resumable_checkpoint
    try:
        path = find_resumable_checkpoint(cfg.work_dir)
    except CorruptCheckpointError as err:
        raise SystemExit(str(err)) from None
    cfg.resume = True
    cfg.load_from = path  # None: nothing to resume, mmengine starts afresh


def train(cfg) -> None:
    """Build the Runner and train; the Runner (and the DDP wrapper that holds the process
    group) is released when this returns, before the distributed teardown."""
    from mmengine.runner import Runner

    from mmwinwin.engine.hooks.preemption_hook import shutdown_train_workers
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except Exception as err:
        if cfg.get('launcher', 'none') != 'none' and _lost_another_rank(err):
            timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
            raise SystemExit(
                f'rank {os.environ.get("RANK", "?")}: lost contact with another rank (it died, '
                f'or did not answer within the process-group timeout env_cfg.dist_cfg.timeout='
                f'{timeout} s): {type(err).__name__}: {str(err).splitlines()[0][:300]}. '
                'Resume with --resume (tools/dist_train.sh restarts the group by itself with '
                'MAX_RESTARTS=N).') from err
        raise
    finally:
        shutdown_train_workers(runner)  # at once, not in a 10 s join at interpreter exit
        for hook in runner.hooks:  # a failed run gets no after_run: disarm PreemptionHook
            if callable(getattr(hook, 'release', None)):
                hook.release()


def _lost_another_rank(err: BaseException) -> bool:
    """A collective failed because a peer died or timed out (gloo / c10d errors)."""
    import torch.distributed as dist
    dist_error = getattr(dist, 'DistError', ())
    text = str(err)
    return isinstance(err, dist_error) or any(s in text for s in (
        'Connection closed by peer', 'Connection reset by peer', 'Timed out waiting',
        'timed out', 'Broken pipe', 'gloo'))


if __name__ == '__main__':
    main()
