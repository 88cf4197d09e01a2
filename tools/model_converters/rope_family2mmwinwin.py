"""Convert a pretrained RoPE ViT checkpoint of a known family -- DINOv3 (upstream release
layout, e.g. the hub's ``dinov3_vitb16_pretrain_lvd1689m-*.pth``, or timm's
``vit_*_patch16_dinov3*``), EVA-02 (BAAI's release layout or timm's ``eva02_*``), naver's
RoPE-ViT (the release's ``rope_mixed_deit_base_patch16_LS.pth``-style DeiT-III files, or timm's
``vit_*_patch16_rope_*``) or PE (Meta's ``PE-Spatial-B16-512.pt``-style files, a whole CLIP
checkpoint's ``visual.`` tower too, or timm's ``vit_pe_*``) -- to mmwinwin's ``RoPEViT`` keys,
offline, checking it against the preset it belongs to.

    python tools/model_converters/rope_family2mmwinwin.py SRC.pth DST.pth [--arch dinov3-vitb16]

The family and arch are inferred from the checkpoint's keys, width, depth and MLP unless
``--arch`` names one of ``mmwinwin.layers.FAMILY_PRESETS``. The converted weights are loaded
into that model before writing, so a checkpoint of another size, family or RoPE convention
stops here with the reason. The output holds ``{'state_dict': ..., 'meta': {'arch': ...}}``
and loads with ``backbone=dict(type='RoPEViT', arch=ARCH, init_cfg=dict(type='Pretrained',
checkpoint='DST.pth'))``. (Such a backbone also reads SRC.pth directly; converting once
checks the file and saves the conversion at every start.)
"""
import argparse
import os.path as osp

import torch

from mmwinwin.layers import CheckpointMismatchError, RoPEVisionTransformer, load_vit_state_dict
from mmwinwin.layers.vit.checkpoint import (checkpoint_family, convert_vit_state_dict,
                                            describe_state, load_checkpoint_file,
                                            matching_presets)
from mmwinwin.layers.vit.rope_families import FAMILY_PRESETS


def load_source(path: str) -> dict:
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise SystemExit(f'{path}: reading .safetensors needs the safetensors package '
                             '(pip install safetensors), or convert it to .pth first.') from e
        return load_file(path)
    return load_checkpoint_file(path)  # weights_only=True; names an empty / corrupt file


def family_of(state: dict) -> str | None:
    """The RoPE family of a converted state dict ('dinov3', 'eva02', 'naver_axial',
    'naver_mixed', 'pe'), or None for a plain ViT."""
    family = checkpoint_family(state)
    return None if family == 'axial' else family


def infer_arch(state: dict, family: str) -> str | None:
    """The first preset of ``family`` whose shapes fit ``state``, else None."""
    names = matching_presets(state, family)
    return names[0] if names else None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='DINOv3, EVA-02, RoPE-ViT or PE checkpoint (.pth or '
                        '.safetensors)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--arch', choices=sorted(FAMILY_PRESETS),
                        help='preset to check against (default: inferred from the checkpoint)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'{args.src}: no such file')
    ckpt = load_source(args.src)
    state = convert_vit_state_dict(ckpt)
    if 'patch_embed.proj.weight' not in state or not any(k.startswith('blocks.') for k in state):
        raise SystemExit(f'{args.src} holds no ViT after conversion (keys like {list(state)[:5]})'
                         '; is it a backbone checkpoint?')
    family = family_of(state)
    if family is None and args.arch is None:
        raise SystemExit(f'{args.src}: {describe_state(state)}, not DINOv3, EVA-02, RoPE-ViT '
                         'or PE (no register tokens with layer scale, no SwiGLU MLP, no cls '
                         'token with layer scale, no pre-norm); for plain ViTs use '
                         'tools/model_converters/vit2mmwinwin.py (RoPE-ViT "-ape" files: pass '
                         '--arch naver-rope-axial-ape-vit?16).')
    arch = args.arch or infer_arch(state, family)
    if arch is None:
        raise SystemExit(f'{args.src}: {describe_state(state)}, which is none of the presets '
                         f'{sorted(FAMILY_PRESETS)}; pass --arch or add a preset.')
    with torch.device('meta'):  # shapes and conventions only; no memory for the weights
        model = RoPEVisionTransformer(arch=arch)
    try:
        load_vit_state_dict(model, ckpt)
    except CheckpointMismatchError as e:
        raise SystemExit(f'{args.src} does not fit arch={arch!r}:\n{e}') from None
    state = convert_vit_state_dict(ckpt, model)
    torch.save(dict(state_dict=state, meta=dict(arch=arch, source=osp.basename(args.src),
                                                converter='rope_family2mmwinwin')), args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors, arch {arch}')


if __name__ == '__main__':
    main()
