"""Convert a CroCo / CroCo-v2 pre-training checkpoint (encoder + decoder) to mmwinwin's
``WinWinFlowEstimator`` keys, offline.

    python tools/model_converters/croco2mmwinwin.py CroCo_V2_ViTBase_BaseDecoder.pth \\
        checkpoints/crocov2_vitb_basedec_mmwinwin.pth

The output holds ``{'state_dict': {'net.encoder.*', 'net.decoder_embed.*',
'net.dec_blocks.*', 'net.dec_norm.*'}, 'meta': {...}}`` and loads with ``load_from=DST``
(mmengine loads non-strictly: the DPT head, absent here, keeps its initialisation) or
``tools/test.py CONFIG DST``. Without conversion, ``model.pretrained=SRC`` in a config does
the same at ``init_weights`` and also checks head counts and widths against the model.
Dropped: ``mask_token``, ``prediction_head.*``, CroCo v1's cosine position buffers and a
CroCo-Flow ``head.*`` (see ``mmwinwin/layers/flow/croco_checkpoint.py``).
"""
import argparse
import os.path as osp

import torch

from mmwinwin.layers.flow.croco_checkpoint import (convert_croco_state_dict, croco_arch_of,
                                                   croco_kwargs_of, load_croco_checkpoint_file)
from mmwinwin.layers.vit.checkpoint import CorruptCheckpointError, UnsafeCheckpointError


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='CroCo checkpoint (e.g. CroCo_V2_ViTBase_BaseDecoder.pth)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'{args.src}: no such file')
    try:  # weights_only=True with argparse.Namespace allowed; errors naming the file
        ckpt = load_croco_checkpoint_file(args.src)
    except (CorruptCheckpointError, UnsafeCheckpointError) as err:
        raise SystemExit(str(err)) from None
    state, dropped = convert_croco_state_dict(ckpt, return_dropped=True)
    state.pop('encoder.pos_embed', None)  # CroCo v1 cosine positions: the model uses RoPE
    kwargs = croco_kwargs_of(ckpt)
    arch = croco_arch_of(ckpt)
    meta = dict(source=osp.basename(args.src), converter='croco2mmwinwin', croco_arch=arch)
    if kwargs is not None:
        meta['croco_kwargs'] = kwargs
    torch.save(dict(state_dict={f'net.{k}': v for k, v in state.items()}, meta=meta), args.dst)
    heads = (f", heads enc {kwargs['enc_num_heads']} / dec {kwargs['dec_num_heads']}, "
             f"{kwargs['pos_embed']}" if kwargs else ', head counts not declared')
    print(f"wrote {args.dst}: {len(state)} tensors; encoder {arch['enc_embed_dim']} x "
          f"{arch['enc_depth']}, decoder {arch['dec_embed_dim']} x {arch['dec_depth']}{heads}; "
          f'dropped {dropped}')


if __name__ == '__main__':
    main()
