"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]``.

mmseg's and mmdet's own ``tools/test.py`` run every config of this project too. This one
adds a strict checkpoint load (a missing, unexpected or wrongly shaped key is an error that
names the keys, where mmengine only logs them), weights-only loading whatever the config
declares, a start-up check of config keys, and ``--launcher pytorch`` on CPU (gloo).
"""
from mmengine.config import Config
from mmengine.runner import Runner


def parse_args():
    from mmwinwin.utils import parse_tool_args, tool_parser
    parser = tool_parser('Test (evaluate) an mmwinwin / mmseg / mmdet model',
                         'directory for logs and metrics', 'test_dataloader.batch_size=1')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    return parse_tool_args(parser)


def main():
    args = parse_args()
    import mmwinwin  # noqa: F401  (registers modules; changes nothing else)
    from mmwinwin.utils import (apply_common_flags, distributed_session, exit_on_unknown_settings,
                                safe_checkpoint_loading)

    cfg = apply_common_flags(Config.fromfile(args.config), args)
    exit_on_unknown_settings(cfg)
    cfg.load_from = None  # loaded strictly below instead of mmengine's lenient load
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    with distributed_session(), safe_checkpoint_loading():
        run_test(cfg, args.checkpoint)


def run_test(cfg, checkpoint: str) -> None:
    """Build the Runner, load the checkpoint strictly and test; the Runner is released
    when this returns, before the distributed teardown."""
    from mmwinwin.utils import CorruptCheckpointError, UnsafeCheckpointError, load_checkpoint_strict
    runner = Runner.from_cfg(cfg)
    try:
        load_checkpoint_strict(runner.model, checkpoint)
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:  # named file, no trace
        raise SystemExit(f'tools/test.py: {err}') from None
    runner.test()


if __name__ == '__main__':
    main()
