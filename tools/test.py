"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``."""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) an mmwinwin / mmseg / mmdet model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for logs and metrics')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. test_dataloader.batch_size=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    import mmwinwin  # noqa: F401  (registers modules, allows mmengine checkpoints)
    from mmwinwin.utils import apply_common_flags, load_checkpoint_strict, teardown_distributed

    cfg = apply_common_flags(Config.fromfile(args.config), args)
    cfg.load_from = None  # loaded strictly below instead of mmengine's lenient load
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    succeeded = False
    try:
        runner = Runner.from_cfg(cfg)
        load_checkpoint_strict(runner.model, args.checkpoint)
        runner.test()
        succeeded = True
    finally:
        teardown_distributed(succeeded)


if __name__ == '__main__':
    main()
