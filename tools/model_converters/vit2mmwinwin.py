"""Convert a ViT checkpoint (timm / DeiT / MAE / mmseg / mmpretrain layout) to mmwinwin's
``RoPEViT`` keys, offline.

    python tools/model_converters/vit2mmwinwin.py SRC.pth DST.pth [--keep-pos-embed]

The output holds ``{'state_dict': ..., 'meta': ...}`` and loads with
``model.backbone.init_cfg=dict(type='Pretrained', checkpoint='DST.pth')``. Heads,
distillation tokens and MAE decoders are dropped; the absolute position embedding is
dropped too (RoPE models do not use it) unless ``--keep-pos-embed``.
"""
import argparse
import os.path as osp

import torch

from mmwinwin.layers.vit.checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                                            convert_vit_state_dict, load_checkpoint_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--keep-pos-embed', action='store_true',
                        help='keep the absolute position embedding (for use_abs_pos_embed=True)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'{args.src}: no such file')
    try:  # weights_only=True, errors naming the file
        ckpt = load_checkpoint_file(args.src)
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise SystemExit(str(err)) from None
    state = convert_vit_state_dict(ckpt)
    if not any(k.startswith('blocks.') for k in state):
        raise SystemExit(f'{args.src} holds no ViT blocks after conversion (keys like '
                         f'{list(state)[:5]}); is it a ViT checkpoint?')
    dropped = [k for k in ('pos_embed',) if k in state and not args.keep_pos_embed]
    for k in dropped:
        state.pop(k)
    depth = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('blocks.'))
    width = state['patch_embed.proj.weight'].shape[0]
    torch.save(dict(state_dict=state, meta=dict(source=osp.basename(args.src), converter=
                                                 'vit2mmwinwin')), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors, depth {depth}, width {width}'
          + (f'; dropped {dropped}' if dropped else ''))


if __name__ == '__main__':
    main()
