"""Load CroCo / CroCo-v2 pre-training checkpoints (encoder *and* decoder) into
:class:`~mmwinwin.layers.flow.croco.CroCoFlowNet`.

Why: the Win-Win paper fine-tunes a CroCo-v2 pre-trained ViT-B encoder and its
cross-attention decoder for optical flow; the encoder-only path (``layers/vit/checkpoint.py``)
leaves the decoder random. What: the official layout (naver/croco ``models/croco.py`` and
``models/blocks.py``) differs from ours only in names and in the cross-attention's key /
value projections:

===============================================  ==============================================
CroCo                                            CroCoFlowNet
===============================================  ==============================================
``patch_embed.proj``, ``enc_blocks.N``,          ``encoder.patch_embed.proj``,
``enc_norm``                                     ``encoder.blocks.N``, ``encoder.norm``
``decoder_embed``, ``dec_norm``                  same names
``dec_blocks.N.{norm1,attn,norm2,norm_y,norm3,   same names
mlp}``
``dec_blocks.N.cross_attn.projq``                ``dec_blocks.N.cross_attn.q``
``cross_attn.projk`` / ``projv``                 ``cross_attn.kv`` = rows ``[k; v]``
``cross_attn.proj``                              same name
``mask_token``, ``prediction_head.*``,           dropped (pre-training only, or a different
``dec_pos_embed``, ``head.*`` (CroCo-Flow DPT)   head); our DPT head and ``offset_proj`` keep
                                                 their initialisation
===============================================  ==============================================

The block semantics match (pre-norm; decoder: self-attention with ``norm1``, cross-attention
from ``norm2(x)`` to ``norm_y(y)`` with RoPE on queries at frame-1 positions and keys at
frame-2 positions, MLP with ``norm3``; ``dec_norm`` after the last block; LayerNorm eps
1e-6; exact GELU). CroCo-v2's RoPE (``pos_embed='RoPE100'``, ``models/pos_embed.py`` and the
CUDA kernel ``curope/kernels.cu``) is the same as ours channel for channel: first half of each
head rotated by y, second by x, rotate-half pairing, frequency ``base ** (-2 i / (head_dim / 2))``,
integer ``(y, x)`` positions -- so no channel permutation is needed. A different RoPE base
is an error; CroCo v1 (cosine absolute embeddings) loads with a warning.

Attention head counts cannot be read from weight shapes; they are checked against the
checkpoint's ``croco_kwargs`` (released CroCo-v2 files) or ``args.model`` (files from the
official pre-training script) when present.
"""
from __future__ import annotations

import argparse
import ast
import re
import warnings
from typing import Any, Mapping

import torch
from torch import nn

from ..vit.checkpoint import (CheckpointMismatchError, convert_vit_state_dict,
                              load_checkpoint_file, mismatch_report, unwrap_state_dict)

__all__ = ['convert_croco_state_dict', 'load_croco_state_dict', 'croco_kwargs_of',
           'croco_arch_of', 'CROCO_SAFE_GLOBALS', 'load_croco_checkpoint_file']

#: Non-tensor types found in official CroCo checkpoints (``args`` of the pre-training
#: script); allow them with ``torch.serialization.safe_globals`` for ``weights_only`` loads.
CROCO_SAFE_GLOBALS: tuple[type, ...] = (argparse.Namespace,)


def load_croco_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """Load a CroCo checkpoint file with ``weights_only=True`` and only
    :data:`CROCO_SAFE_GLOBALS` allowed (see :func:`~mmwinwin.layers.vit.checkpoint.
    load_checkpoint_file` for the errors)."""
    return load_checkpoint_file(path, map_location=map_location, safe_globals=CROCO_SAFE_GLOBALS)

# CroCoNet's constructor defaults (naver/croco models/croco.py), used for kwargs that a
# checkpoint's croco_kwargs / args.model leave out.
_CROCONET_DEFAULTS = dict(patch_size=16, enc_embed_dim=768, enc_depth=12, enc_num_heads=12,
                          dec_embed_dim=512, dec_depth=8, dec_num_heads=16, mlp_ratio=4,
                          norm_im2_in_dec=True, pos_embed='cosine')

_ENCODER_KEY = re.compile(r'^(patch_embed\.|enc_blocks\.|enc_norm\.|enc_pos_embed$)')
_DROP = ('mask_token',        # pre-training mask token
         'prediction_head.',  # pre-training pixel head
         'dec_pos_embed',     # fixed cosine decoder positions (CroCo v1); ours uses RoPE
         'head.')             # CroCo-Flow/Stereo DPT head: another layout, ours keeps its init


def _parse_model_string(text: str) -> dict | None:
    """``"CroCoNet(enc_embed_dim=1024, pos_embed='RoPE100')"`` -> dict, literals only
    (never evaluated as code)."""
    try:
        call = ast.parse(text.strip(), mode='eval').body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or getattr(call.func, 'id', None) != 'CroCoNet':
        return None
    try:
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except ValueError:
        return None


def croco_kwargs_of(checkpoint: Mapping) -> dict | None:
    """The ``CroCoNet`` arguments a checkpoint declares, completed with CroCoNet's defaults;
    ``None`` when it declares none (a bare state dict or CroCo v1's ``CroCo.pth``)."""
    kwargs = None
    if isinstance(checkpoint.get('croco_kwargs'), Mapping):
        kwargs = dict(checkpoint['croco_kwargs'])
    elif 'args' in checkpoint:
        args = checkpoint['args']
        text = args.get('model') if isinstance(args, Mapping) else getattr(args, 'model', None)
        if isinstance(text, str) and text.strip().startswith('CroCoNet('):
            kwargs = _parse_model_string(text)
    return None if kwargs is None else {**_CROCONET_DEFAULTS, **kwargs}


def _croco_state(checkpoint: Mapping) -> dict:
    state = unwrap_state_dict(checkpoint)
    while state and all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    if not any(k.startswith(('enc_blocks.', 'dec_blocks.')) for k in state):
        hint = ''
        if any('encoder.blocks.' in k for k in state):
            hint = (' It looks already converted to mmwinwin keys: load it with load_from '
                    '(or tools/test.py) instead.')
        elif any(re.match(r'^(blocks|layers)\.\d+\.', k) for k in state):
            hint = ' It looks like an encoder-only ViT: use pretrained_encoder instead.'
        raise CheckpointMismatchError(
            f'Not a CroCo checkpoint: no enc_blocks.* / dec_blocks.* keys (first keys: '
            f'{sorted(state)[:5]}).{hint}')
    return state


def croco_arch_of(checkpoint: Mapping) -> dict:
    """Widths, depths and MLP ratios of a CroCo checkpoint, read from its tensor shapes."""
    state = _croco_state(checkpoint)

    def depth(prefix: str) -> int:
        idx = [int(m.group(1)) for k in state for m in [re.match(prefix + r'(\d+)\.', k)] if m]
        return max(idx) + 1 if idx else 0

    def width(key: str) -> int | None:
        return int(state[key].shape[0]) if key in state else None

    arch = dict(enc_embed_dim=width('enc_norm.weight') or width('patch_embed.proj.weight'),
                enc_depth=depth(r'enc_blocks\.'), dec_embed_dim=width('dec_norm.weight')
                or width('decoder_embed.weight'), dec_depth=depth(r'dec_blocks\.'))
    for part in ('enc', 'dec'):
        fc1 = state.get(f'{part}_blocks.0.mlp.fc1.weight')
        if fc1 is not None:
            arch[f'{part}_mlp_ratio'] = fc1.shape[0] / fc1.shape[1]
    return arch


StateDict = dict[str, torch.Tensor]


def convert_croco_state_dict(checkpoint: Mapping, net: nn.Module | None = None,
                             return_dropped: bool = False
                             ) -> StateDict | tuple[StateDict, list[str]]:
    """Map a CroCo / CroCo-v2 checkpoint onto :class:`CroCoFlowNet` keys.

    Args:
        checkpoint: the loaded file (``{'model': state_dict, 'croco_kwargs': ...}``) or a
            bare state dict in CroCo's key layout (a ``module.`` prefix is stripped).
        net: the target ``CroCoFlowNet``; when given, the encoder part is adapted to it
            like ``convert_vit_state_dict`` does (absolute embeddings dropped with a warning
            for a RoPE-only encoder).
        return_dropped: also return the checkpoint keys that were dropped.

    Returns:
        The converted state dict (``encoder.*``, ``decoder_embed.*``, ``dec_blocks.*``,
        ``dec_norm.*``; unknown keys are passed through unchanged so that loading reports
        them), and with ``return_dropped`` the sorted list of dropped keys.
    """
    state = _croco_state(checkpoint)
    enc = {k: v for k, v in state.items() if _ENCODER_KEY.match(k)}
    out = {f'encoder.{k}': v
           for k, v in convert_vit_state_dict(enc, getattr(net, 'encoder', None)).items()}
    dropped = ['enc_pos_embed'] if 'enc_pos_embed' in enc and 'encoder.pos_embed' not in out else []
    for key, value in state.items():
        if key in enc:
            continue
        if any(key == d or (d.endswith('.') and key.startswith(d)) for d in _DROP):
            dropped.append(key)
            continue
        m = re.match(r'^(dec_blocks\.\d+\.cross_attn\.)proj([qkv])\.(weight|bias)$', key)
        if m is None:  # same name: decoder_embed, dec_norm, the rest of dec_blocks; or unknown
            out[key] = value  # (unknown keys are reported by the loader)
        elif m.group(2) == 'q':
            out[f'{m.group(1)}q.{m.group(3)}'] = value
        elif m.group(2) == 'k':  # fused kv: rows [0, dim) are k, [dim, 2 dim) are v
            v_key = f'{m.group(1)}projv.{m.group(3)}'
            if v_key not in state:
                raise CheckpointMismatchError(f'{key} has no matching {v_key} in the checkpoint.')
            out[f'{m.group(1)}kv.{m.group(3)}'] = torch.cat([value, state[v_key]], dim=0)
        elif f'{m.group(1)}projk.{m.group(3)}' not in state:
            raise CheckpointMismatchError(f'{key} has no matching '
                                          f'{m.group(1)}projk.{m.group(3)} in the checkpoint.')
    if 'dec_pos_embed' in state or 'enc_pos_embed' in state:
        warnings.warn('This CroCo checkpoint was pre-trained with fixed cosine absolute '
                      'position embeddings (CroCo v1, pos_embed="cosine"); CroCoFlowNet uses '
                      'RoPE only, so the weights load but their positional cue changes. '
                      'CroCo-v2 (RoPE100) checkpoints match exactly.', stacklevel=2)
    return (out, sorted(dropped)) if return_dropped else out


def _kept_at_init(key: str) -> bool:
    return key.startswith('head.') or '.cross_attn.offset_proj.' in key


def _config_hint(net: nn.Module, arch: dict, kwargs: dict | None) -> str:
    """Checkpoint vs model architecture, and the config values that fit the checkpoint."""
    heads = kwargs or {}
    dec_heads = net.dec_blocks[0].attn.num_heads if len(net.dec_blocks) else '-'
    summary = (f"checkpoint: encoder {arch.get('enc_embed_dim')} wide x {arch.get('enc_depth')}"
               f" blocks, decoder {arch.get('dec_embed_dim')} x {arch.get('dec_depth')}; model: "
               f'encoder {net.encoder.embed_dims} x {net.encoder.num_layers} '
               f'({net.encoder.num_heads} heads), decoder {net.decoder_embed.out_features} x '
               f'{len(net.dec_blocks)} ({dec_heads} heads).')
    fmt = lambda v: f'{v:g}' if isinstance(v, float) else str(v)  # noqa: E731
    enc = [f"embed_dims={arch.get('enc_embed_dim')}", f"num_layers={arch.get('enc_depth')}",
           f"num_heads={heads.get('enc_num_heads', '?')}"]
    if arch.get('enc_mlp_ratio') is not None:
        enc.append(f"mlp_ratio={fmt(arch['enc_mlp_ratio'])}")
    dec = [f"dec_embed_dims={arch.get('dec_embed_dim')}", f"dec_num_layers={arch.get('dec_depth')}",
           f"dec_num_heads={heads.get('dec_num_heads', '?')}"]
    if arch.get('dec_mlp_ratio') is not None:
        dec.append(f"dec_mlp_ratio={fmt(arch['dec_mlp_ratio'])}")
    unknown = '' if heads else (' (head counts are not stored in the weights: use those of '
                                'the pre-training)')
    return (f'{summary}\nTo match the checkpoint, set in model.net: encoder.arch=dict('
            f"{', '.join(enc)}), {', '.join(dec)}{unknown}. CroCo_V2_ViTBase_BaseDecoder is "
            "arch='base' with 768 / 12 / 12 (the ViT-B configs).")


def _check_kwargs(net: nn.Module, kwargs: dict) -> list[str]:
    """Differences between the checkpoint's declared CroCoNet arguments and ``net``
    that tensor shapes cannot reveal (head counts, RoPE base, memory norm). A cosine
    checkpoint (CroCo v1) is warned about in ``convert_croco_state_dict``."""
    errors = []
    enc_heads = net.encoder.num_heads
    dec_heads = net.dec_blocks[0].attn.num_heads if len(net.dec_blocks) else None
    if kwargs['enc_num_heads'] != enc_heads:
        errors.append(f"encoder heads: checkpoint enc_num_heads={kwargs['enc_num_heads']} vs "
                      f'model {enc_heads} (set num_heads in model.net.encoder.arch)')
    if dec_heads is not None and kwargs['dec_num_heads'] != dec_heads:
        errors.append(f"decoder heads: checkpoint dec_num_heads={kwargs['dec_num_heads']} vs "
                      f'model {dec_heads} (set model.net.dec_num_heads)')
    pos = str(kwargs['pos_embed'])
    if pos.startswith('RoPE'):
        base = float(pos[len('RoPE'):])
        for name, rope in (('encoder', net.encoder.rope), ('decoder', net.dec_rope)):
            if rope is not None and rope.base != base:
                errors.append(f'{name} RoPE base: checkpoint {pos} vs model {rope.base:g} '
                              f'(set model.net.encoder.rope_base={base:g})')
    if kwargs.get('patch_size') not in (None, net.patch_size):
        errors.append(f"patch size: checkpoint {kwargs['patch_size']} vs model {net.patch_size} "
                      f'(set model.net.encoder.patch_size)')
    if not kwargs.get('norm_im2_in_dec', True):
        errors.append('the checkpoint was pre-trained with norm_im2_in_dec=False (no norm_y on '
                      'frame-2 tokens); CroCoFlowNet always normalises them')
    return errors


def load_croco_state_dict(net: nn.Module, checkpoint: Mapping) -> dict[str, Any]:
    """Load a CroCo / CroCo-v2 checkpoint's encoder and decoder into ``net``.

    The DPT head (and ``offset_proj`` when ``dec_offset_readout=True``) keeps its
    initialisation; everything else must come from the checkpoint.

    Returns:
        A report: ``loaded`` (model keys set from the checkpoint), ``kept_init`` (model
        keys left at init), ``dropped`` (checkpoint keys not used), ``croco_kwargs`` (as
        declared by the checkpoint, or ``None``), ``heads_verified`` (whether head counts
        could be checked) and ``arch`` (the checkpoint's widths / depths).

    Raises:
        CheckpointMismatchError: widths, depths, head counts or RoPE base differ, or keys
            are missing / unexpected; the message names the keys and shapes and says which
            config values would match the checkpoint.
    """
    kwargs = croco_kwargs_of(checkpoint)
    state, dropped = convert_croco_state_dict(checkpoint, net, return_dropped=True)
    arch = croco_arch_of(checkpoint)
    target = net.state_dict()
    optional = {'encoder.cls_token', 'encoder.pos_embed'}
    missing = sorted(k for k in target if k not in state and not _kept_at_init(k)
                     and k not in optional)
    unexpected = sorted(k for k in state if k not in target or _kept_at_init(k))
    lines = mismatch_report(state, target, missing, unexpected)
    lines += _check_kwargs(net, kwargs) if kwargs is not None else []
    if lines:
        raise CheckpointMismatchError(
            'The CroCo checkpoint does not match CroCoFlowNet:\n' + '\n'.join(lines) + '\n'
            + _config_hint(net, arch, kwargs))
    if kwargs is None:
        warnings.warn('The checkpoint does not declare its CroCoNet arguments (croco_kwargs / '
                      'args.model), so attention head counts could not be checked: make sure '
                      'model.net.encoder.arch num_heads and dec_num_heads match the '
                      'pre-training.', stacklevel=2)
    missing_optional = sorted(k for k in optional if k in target and k not in state)
    if missing_optional:
        warnings.warn(f'The checkpoint has no {missing_optional}; they keep their '
                      'initialisation.', stacklevel=2)
    net.load_state_dict(state, strict=False)
    return dict(loaded=sorted(state), kept_init=sorted(k for k in target if _kept_at_init(k))
                + missing_optional, dropped=dropped, croco_kwargs=kwargs,
                heads_verified=kwargs is not None, arch=arch)
