"""Write a small synthetic dataset in a real on-disk layout.

    python tools/dataset_converters/generate_synthetic.py ade20k data/synthetic_ade20k \
        --size 512 512 --num-train 16 --num-val 4
    python tools/dataset_converters/generate_synthetic.py sintel-flow data/synthetic_flow \
        --size 128 192 --num-train 256 --num-val 8
    python tools/dataset_converters/generate_synthetic.py nyu data/synthetic_nyu --size 128 192
    python tools/dataset_converters/generate_synthetic.py coco data/coco_synth --size 128 128
    python tools/dataset_converters/generate_synthetic.py coco data/coco_context \
        --size 128 256 --coco-task context --num-train 96 --num-val 8

Layouts: ADE20K (ADEChallengeData2016), NYU depth (mmseg's NYU layout), MPI-Sintel flow, and
COCO 2017 instances + panoptic (``annotations/instances_*.json``, ``panoptic_*.json`` and PNGs).
"""
import argparse

from mmwinwin.datasets.synthetic import generate_ade20k, generate_coco, generate_nyu
from mmwinwin.datasets.synthetic.flow import generate_sintel_flow

GENERATORS = {'ade20k': generate_ade20k, 'nyu': generate_nyu, 'sintel-flow': generate_sintel_flow,
              'coco': generate_coco}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('layout', choices=sorted(GENERATORS))
    parser.add_argument('root', help='output folder')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--num-train', type=int, default=16)
    parser.add_argument('--num-val', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-flow', type=float, default=None,
                        help='sintel-flow only: largest motion in pixels (default 8)')
    parser.add_argument('--coco-task', default=None, choices=['shapes', 'context', 'local'],
                        help='coco only: shapes (default), or a Win-Win cue task: context '
                             '(the class is a beacon colour far from the object) / local')
    parser.add_argument('--cue-gap', type=int, default=None,
                        help='coco context / local only: least beacon-object gap in pixels '
                             '(default 64)')
    args = parser.parse_args()
    extra = {}
    if args.coco_task is not None or args.cue_gap is not None:
        if args.layout != 'coco':
            parser.error('--coco-task and --cue-gap apply to the coco layout only.')
        extra['task'] = args.coco_task or 'shapes'
        if args.cue_gap is not None:
            extra['cue_gap'] = args.cue_gap
    if args.max_flow is not None:
        if args.layout != 'sintel-flow':
            parser.error('--max-flow applies to the sintel-flow layout only.')
        extra['max_flow'] = args.max_flow
    written = GENERATORS[args.layout](args.root, num_train=args.num_train, num_val=args.num_val,
                                      img_size=tuple(args.size), seed=args.seed, **extra)
    print(f'wrote a synthetic {args.layout} dataset to {args.root}')
    if isinstance(written, dict):  # coco: the annotation files and image folders
        for key, path in written.items():
            print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
