"""Convert ViT checkpoints of the common layouts to ``RoPEVisionTransformer`` keys.

Supported layouts: timm / DeiT / MAE (``blocks.N.attn.qkv``), mmseg / mmpretrain
(``layers.N.attn.attn.in_proj_weight``, ``ffn.layers``), CroCo / CroCo-v2 (``enc_blocks.N``,
``enc_norm``; its decoder is dropped here, ``croco_checkpoint.py`` maps it), DINOv3 in the
upstream release layout (``storage_tokens``, ``ls1.gamma``, ``rope_embed.periods``, masked
``qkv.bias``) and in timm's (``reg_token``, ``gamma_1``, ``q_bias`` / ``v_bias``), EVA-02 in the
upstream (``q_proj`` / ``k_proj`` / ``v_proj``, ``mlp.w1`` / ``w2`` / ``ffn_ln`` / ``w3``) and timm
layouts (packed ``mlp.fc1`` or ``fc1_g`` / ``fc1_x``, ``fc_norm``), naver's RoPE-ViT in the
upstream (DeiT-III keys, ``gamma_1``, RoPE-Mixed ``freqs`` ``(2, depth, heads * D / 2)``) and
timm layouts (``rope.freqs`` ``(2, depth, heads, D / 2)``), PE (Perception Encoder) in the
upstream (``conv1``, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
``transformer.resblocks.N``, ``in_proj_weight``, ``ls_1``, ``c_fc``; optionally a whole CLIP
checkpoint under ``visual.``) and timm layouts (``norm_pre``, ``attn_pool``), with or without
a ``backbone.`` / ``module.`` / ``encoder.`` prefix and inside ``state_dict`` / ``model``.
Classifier heads, distillation tokens and MAE / CroCo decoders are dropped; absolute
position embeddings are dropped with a warning when the target uses RoPE only.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from typing import Any, Iterable, Mapping

import torch
from torch import nn

__all__ = ['convert_vit_state_dict', 'load_vit_state_dict', 'CheckpointMismatchError',
           'unwrap_state_dict', 'mismatch_report', 'load_checkpoint_file',
           'CorruptCheckpointError', 'UnsafeCheckpointError', 'dinov3_layout', 'eva02_layout',
           'pe_layout', 'describe_state', 'checkpoint_family', 'matching_presets']

_DROP_PATTERNS = (r'^head\.', r'^head_dist\.', r'^fc_norm\.', r'^dist_token$', r'^decoder',
                  r'^mask_token$', r'^pre_logits', r'^head_drop', r'^local_cls_norm\.',
                  r'^projectors\.', r'^attn_pool\.', r'^freqs_t_[xy]$')
_PREFIXES = ('module.', 'backbone.', 'encoder.', 'model.')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model (different width, depth or layout)."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is empty, truncated or not a torch checkpoint at all."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles a type outside the allow-list (it could run code on load)."""


# torch's messages for a file that is not a (complete) torch zip / legacy pickle
_CORRUPT_PATTERNS = ('PytorchStreamReader', 'central directory', 'zip archive', 'EOF',
                     'invalid load key', 'unpickling stack underflow', 'file not found in archive',
                     'truncated', 'failed reading', 'magic number')


def load_checkpoint_file(path: str, map_location: Any = 'cpu',
                         safe_globals: Iterable = (), mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` with ``safe_globals`` allowed, and errors
    that name the file.

    ``weights_only=True`` is passed explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``
    cannot turn the safe unpickler off. ``safe_globals`` lists the non-tensor types the
    caller expects in its files (``torch.serialization.add_safe_globals`` entries: a class
    or function, or ``(obj, 'module.name')``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpointError: the file is empty (0 bytes), truncated or not a checkpoint.
        UnsafeCheckpointError: the file pickles a type outside the allow-list (named in the
            message); nothing from it was executed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path!r} does not exist.')
    if os.path.getsize(path) == 0:
        raise CorruptCheckpointError(
            f'Checkpoint {path!r} is empty (0 bytes): the save or download was interrupted. '
            'Delete it and use an intact checkpoint (re-download it, or resume from an '
            'earlier one).')
    # torch's safe_globals context removes its entries on exit, even ones that were already
    # allowed process-wide (e.g. by ``import mmwinwin``): add only the missing ones
    allowed = torch.serialization.get_safe_globals()
    extra = [g for g in safe_globals if g not in allowed]
    try:
        with torch.serialization.safe_globals(extra):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        detail = _unpickler_detail(str(err))
        refused = _refused_globals(path, detail, extra)
        if refused:
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {path!r}: it holds objects outside the allow-list '
                f'of safe types: {", ".join(refused)}. Unpickling them could run arbitrary code; '
                'nothing from the file was run. Use a checkpoint that holds only tensors and '
                'plain data: save the weights with torch.save(model.state_dict(), path) where '
                'the file was made, or take the original release of the weights.') from None
        raise CorruptCheckpointError(
            f'Checkpoint {path!r} is corrupt or not a torch checkpoint (the safe unpickler '
            f'stopped at: {detail}). Use an intact checkpoint written by torch.save '
            '(re-download it, or resume from an earlier one).') from None
    except (EOFError, KeyError, IndexError, zipfile.BadZipFile) as err:  # bad/short pickle data
        raise CorruptCheckpointError(
            f'Checkpoint {path!r} is truncated or corrupt ({type(err).__name__}: {err}). Use an '
            'intact checkpoint (re-download it, or resume from an earlier one).') from err
    except (RuntimeError, ValueError) as err:
        msg = str(err)
        if any(p.lower() in msg.lower() for p in _CORRUPT_PATTERNS):
            raise CorruptCheckpointError(
                f'Checkpoint {path!r} is truncated or corrupt ({msg.splitlines()[0]}). Use an '
                'intact checkpoint (re-download it, or resume from an earlier one).') from err
        raise



def _unpickler_detail(msg: str) -> str:
    """What torch's weights-only unpickler refused, without torch's advice around it (to
    re-run with ``weights_only=False``, or to allow-list the global)."""
    found = re.search(r'WeightsUnpickler error:\s*(.*?)\s*(?:\n\s*\nCheck the documentation|$)',
                      msg, re.S)
    text = found.group(1) if found else msg
    text = re.split(r'\s*(?:Please use `torch\.serialization|Check the documentation)', text)[0]
    text = ' '.join(text.split())
    return text or 'an unreadable pickle'


def _pickled_globals(path: str, max_pickles: int = 8) -> list[str]:
    """The ``module.name`` globals the pickle(s) in a checkpoint file import, read with
    ``pickletools`` (nothing is unpickled): ``data.pkl`` of a ``torch.save`` zip, else the
    file's leading pickles (a raw pickle, or torch's legacy format)."""
    import io
    import pickletools
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                streams = [io.BytesIO(archive.read(n)) for n in archive.namelist()
                           if n.endswith('.pkl')]
        else:
            streams = [open(path, 'rb')]
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    names: list[str] = []
    string_ops = {'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE', 'STRING',
                  'BINSTRING', 'SHORT_BINSTRING'}
    for stream in streams:
        with stream:
            for _ in range(max_pickles):
                pushed: list = []  # recent pushes, a str where a string was pushed
                memo: dict = {}
                try:
                    for op, arg, _pos in pickletools.genops(stream):
                        if op.name in ('GLOBAL', 'INST'):
                            names.append(arg.replace(' ', '.'))
                        elif op.name == 'STACK_GLOBAL' and len(pushed) >= 2 and all(
                                isinstance(v, str) for v in pushed[-2:]):
                            names.append(f'{pushed[-2]}.{pushed[-1]}')
                        if op.name == 'MEMOIZE':
                            memo[len(memo)] = pushed[-1] if pushed else None
                        elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                            memo[arg] = pushed[-1] if pushed else None
                        elif op.name in ('GET', 'BINGET', 'LONG_BINGET'):
                            pushed.append(memo.get(arg))
                        elif op.name in string_ops:
                            pushed.append(arg)
                        elif op.name not in ('FRAME', 'PROTO'):
                            pushed.append(None)
                        del pushed[:-2]
                except Exception:  # noqa: BLE001  (past the pickles: storage bytes, or cut)
                    break
                if not stream.read(1):
                    break
                stream.seek(-1, io.SEEK_CUR)
    return [n.replace('__builtin__.', 'builtins.', 1) if n.startswith('__builtin__.') else n
            for n in names]


def _refused_globals(path: str, detail: str, extra: list) -> list[str]:
    """The globals of a checkpoint that the weights-only unpickler refuses: the one torch
    named, a ``getattr`` the restricted one refused, and any other outside the allow-list."""
    refused = []
    named = re.search(r'GLOBAL ([\w.]+)', detail)  # "Unsupported global: GLOBAL posix.system"
    if named:
        refused.append(named.group(1))
    getattr_call = (re.search(r'Refusing (getattr\(.*\)) while loading a checkpoint:\s*(.*)',
                              detail) or re.search(r'Refusing (getattr\(.*?\))()', detail))
    if getattr_call:
        why = getattr_call.group(2).rstrip('.')
        refused.append(f'builtins.getattr (as {getattr_call.group(1)}'
                       f'{"; " + why if why else ""})')
    try:  # torch's own list of allowed globals (private; only used to name the others)
        from torch import _weights_only_unpickler as unpickler
        allowed = set(unpickler._get_allowed_globals())
    except Exception:  # noqa: BLE001
        return refused
    for entry in [*torch.serialization.get_safe_globals(), *extra]:
        allowed.add(entry[1] if isinstance(entry, tuple)
                    else f'{getattr(entry, "__module__", "")}.{getattr(entry, "__qualname__", "")}')
    for name in _pickled_globals(path):
        if name not in allowed and not name.startswith('torch.') and not any(
                r == name or r.startswith(name + ' ') for r in refused):
            refused.append(name)
    return refused


def unwrap_state_dict(checkpoint: Mapping) -> dict:
    """Take the weights out of a checkpoint dict (``state_dict``/``model``/``module``)."""
    for key in ('state_dict', 'model', 'module'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return dict(checkpoint[key])
    return dict(checkpoint)


def _strip_prefix(state: dict) -> dict:
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            return _strip_prefix({k[len(prefix):]: v for k, v in state.items()})
    if any(k.startswith('backbone.') for k in state):  # a whole segmentor: keep the backbone
        return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    return state


def _convert_mm_layout(state: dict) -> dict:
    """mmseg / mmpretrain ViT keys -> timm keys."""
    out = {}
    for k, v in state.items():
        k = k.replace('patch_embed.projection.', 'patch_embed.proj.')
        m = re.match(r'^layers\.(\d+)\.(.*)$', k)
        if m:
            i, rest = m.groups()
            rest = (rest.replace('ln1.', 'norm1.').replace('ln2.', 'norm2.')
                    .replace('attn.attn.in_proj_weight', 'attn.qkv.weight')
                    .replace('attn.attn.in_proj_bias', 'attn.qkv.bias')
                    .replace('attn.attn.out_proj.', 'attn.proj.')
                    .replace('ffn.layers.0.0.', 'mlp.fc1.').replace('ffn.layers.1.', 'mlp.fc2.'))
            k = f'blocks.{i}.{rest}'
        elif k.startswith('ln1.'):
            k = 'norm.' + k[len('ln1.'):]
        elif k.startswith('pre_norm.') or k.startswith('ln_pre.'):
            continue
        out[k] = v
    return out


# CroCo's pre-training (and CroCo-Flow) keys beside the encoder: decoder, mask token,
# pixel head, fixed cosine decoder positions, downstream DPT head.
_CROCO_NON_ENCODER = (r'^dec_blocks\.', r'^dec_norm\.', r'^decoder_embed\.', r'^dec_pos_embed$',
                      r'^prediction_head\.', r'^mask_token$', r'^head\.')


def _convert_croco_layout(state: dict) -> dict:
    """CroCo encoder keys -> timm keys (``enc_blocks.N`` -> ``blocks.N``, ``enc_norm`` ->
    ``norm``); CroCo v1's fixed cosine ``enc_pos_embed`` ``(N, C)`` becomes ``pos_embed``
    ``(1, N, C)`` so the usual drop-with-warning / resize applies. The rest is dropped."""
    out = {}
    for k, v in state.items():
        if any(re.match(p, k) for p in _CROCO_NON_ENCODER):
            continue
        if k.startswith('enc_blocks.'):
            k = 'blocks.' + k[len('enc_blocks.'):]
        elif k.startswith('enc_norm.'):
            k = 'norm.' + k[len('enc_norm.'):]
        elif k == 'enc_pos_embed':
            k, v = 'pos_embed', v[None] if v.dim() == 2 else v
        out[k] = v
    return out


def dinov3_layout(state: Mapping) -> str | None:
    """``'upstream'`` or ``'timm'`` for a DINOv3 state dict (prefixes stripped), else
    ``None``. Upstream keeps register tokens as ``storage_tokens``; timm as ``reg_token``
    with EVA's ``gamma_1`` layer scale and no absolute position embedding (DINOv2 with
    registers, a non-RoPE family, has ``pos_embed``)."""
    if 'storage_tokens' in state:
        return 'upstream'
    if 'reg_token' in state and 'pos_embed' not in state and 'blocks.0.gamma_1' in state:
        return 'timm'
    return None


def _convert_dinov3_layout(state: dict) -> tuple[dict, torch.Tensor | None]:
    """DINOv3 keys (either layout) -> ours. Returns the state and the checkpoint's RoPE
    periods (upstream ``rope_embed.periods``; ``None`` when absent, as in timm)."""
    out, periods = {}, None
    for k, v in state.items():
        if k == 'rope_embed.periods':
            periods = v
            continue
        if k.startswith('rope') or k.endswith('.bias_mask') or k.endswith('.k_bias'):
            continue
        if k.endswith('.attn.q_bias'):  # timm qkvb: q / v bias, key bias fixed at zero
            v_bias = state[k.replace('.q_bias', '.v_bias')]
            out[k.replace('.q_bias', '.qkv.bias')] = torch.cat([v, torch.zeros_like(v), v_bias])
            continue
        if k.endswith('.attn.v_bias'):
            continue
        if k.endswith('.attn.qkv.bias') and k.replace('.bias', '.bias_mask') in state:
            v = v * state[k.replace('.bias', '.bias_mask')].to(v.dtype)  # upstream mask_k_bias
        k = (k.replace('storage_tokens', 'reg_token').replace('.gamma_1', '.ls1.gamma')
             .replace('.gamma_2', '.ls2.gamma').replace('.mlp.w1.', '.mlp.fc1_g.')
             .replace('.mlp.w2.', '.mlp.fc1_x.').replace('.mlp.w3.', '.mlp.fc2.'))  # SwiGLU
        out[k] = v
    return out, periods


def eva02_layout(state: Mapping) -> bool:
    """Whether a state dict (prefixes stripped) is EVA-02's: separate q / v biases or
    q / k / v projections, and a SwiGLU MLP (upstream ``w1``/``w2``/``w3``, timm's
    ``fc1_g``/``fc1_x``, or a packed ``fc1`` twice as wide as ``fc2``'s input), no
    register tokens."""
    if 'storage_tokens' in state or 'reg_token' in state:
        return False
    split_attn = ('blocks.0.attn.q_bias' in state or 'blocks.0.attn.q_proj.weight' in state)
    fc1, fc2 = state.get('blocks.0.mlp.fc1.weight'), state.get('blocks.0.mlp.fc2.weight')
    swiglu = ('blocks.0.mlp.w1.weight' in state or 'blocks.0.mlp.fc1_g.weight' in state
              or 'blocks.0.mlp.w12.weight' in state
              or (fc1 is not None and fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]))
    return split_attn and swiglu


def _convert_eva02_layout(state: dict) -> dict:
    """EVA-02 keys (upstream or timm) -> ours: q / k / v projections fused into ``qkv``
    (key bias zero), packed SwiGLU ``fc1`` split into gate (first half) and value,
    ``w1`` / ``w2`` / ``ffn_ln`` / ``w3`` -> ``fc1_g`` / ``fc1_x`` / ``norm`` / ``fc2``, and
    timm's ``fc_norm`` (where it moved the final norm) back to ``norm``."""
    out = {}
    for k, v in state.items():
        if k.startswith('rope') or k.startswith('lm_head') or k.endswith('.k_bias'):
            continue
        m = re.match(r'^(blocks\.\d+\.attn\.)(q_proj\.weight|q_bias|q_proj\.bias)$', k)
        if m:
            pre, what = m.groups()
            if what == 'q_proj.weight':
                out[pre + 'qkv.weight'] = torch.cat(
                    [v, state[pre + 'k_proj.weight'], state[pre + 'v_proj.weight']])
            else:
                v_bias = state.get(pre + 'v_bias', state.get(pre + 'v_proj.bias'))
                out[pre + 'qkv.bias'] = torch.cat([v, torch.zeros_like(v), v_bias])
            continue
        if re.match(r'^blocks\.\d+\.attn\.(k_proj\.weight|v_proj\.weight|v_bias|v_proj\.bias)$', k):
            continue
        m = re.match(r'^(blocks\.\d+\.mlp\.)(fc1|w12)\.(weight|bias)$', k)
        if m:  # packed: [gate | value]
            gate, value = v.chunk(2, dim=0)
            out[f'{m.group(1)}fc1_g.{m.group(3)}'] = gate
            out[f'{m.group(1)}fc1_x.{m.group(3)}'] = value
            continue
        k = (k.replace('.mlp.w1.', '.mlp.fc1_g.').replace('.mlp.w2.', '.mlp.fc1_x.')
             .replace('.mlp.w3.', '.mlp.fc2.').replace('.mlp.ffn_ln.', '.mlp.norm.'))
        out[k] = v
    if 'norm.weight' not in out:
        for p in ('weight', 'bias'):
            if f'fc_norm.{p}' in out:
                out[f'norm.{p}'] = out.pop(f'fc_norm.{p}')
    return out


def pe_layout(state: Mapping) -> bool:
    """Whether a state dict (prefixes stripped) is PE's upstream release layout
    (``conv1``, ``transformer.resblocks.N``), alone or as a CLIP checkpoint's ``visual.``."""
    return 'conv1.weight' in state or 'visual.conv1.weight' in state


_PE_SWAPS = (('conv1.', 'patch_embed.proj.'), ('ln_pre.', 'norm_pre.'), ('ln_post.', 'norm.'),
             ('transformer.resblocks.', 'blocks.'), ('.ln_1.', '.norm1.'), ('.ln_2.', '.norm2.'),
             ('.attn.in_proj_weight', '.attn.qkv.weight'),
             ('.attn.in_proj_bias', '.attn.qkv.bias'), ('.attn.out_proj.', '.attn.proj.'),
             ('.ls_1.gamma', '.ls1.gamma'), ('.ls_2.gamma', '.ls2.gamma'),
             ('.mlp.c_fc.', '.mlp.fc1.'), ('.mlp.c_proj.', '.mlp.fc2.'))


def _convert_pe_layout(state: dict) -> dict:
    """PE's upstream keys -> ours: only the vision tower of a CLIP checkpoint (``visual.``),
    ``class_embedding`` ``(C,)`` -> ``cls_token`` ``(1, 1, C)``, ``positional_embedding``
    ``(N, C)`` -> ``pos_embed`` ``(1, N, C)``; the pooling head (``attn_pool``) and the
    output projection ``proj`` are dropped (the trunk's patch tokens only)."""
    if 'visual.conv1.weight' in state:
        state = {k[len('visual.'):]: v for k, v in state.items() if k.startswith('visual.')}
    out = {}
    for k, v in state.items():
        if k == 'proj' or k.startswith('attn_pool.'):
            continue
        if k == 'class_embedding':
            out['cls_token'] = v.reshape(1, 1, -1)
            continue
        if k == 'positional_embedding':
            out['pos_embed'] = v[None] if v.dim() == 2 else v
            continue
        for old, new in _PE_SWAPS:
            k = k.replace(old, new)
        out[k] = v
    return out


def _convert_layer_scale_and_mixed(state: dict) -> dict:
    """DeiT-III / EVA-style layer scale ``gamma_1`` / ``gamma_2`` -> ``ls1`` / ``ls2.gamma``
    (RoPE-ViT, timm's PE), and RoPE-Mixed's learned frequencies -> per block
    ``blocks.N.attn.rope.freqs``: timm's ``rope.freqs`` ``(2, depth, heads, D / 2)`` gives
    ``(2, heads, D / 2)``, the upstream ``freqs`` ``(2, depth, heads * D / 2)`` gives
    ``(2, heads * D / 2)`` (reshaped to the model's heads when it is known)."""
    out = {}
    for k, v in state.items():
        if k in ('rope.freqs', 'freqs') and v.dim() >= 3 and v.shape[0] == 2:
            for i in range(v.shape[1]):
                out[f'blocks.{i}.attn.rope.freqs'] = v[:, i]
            continue
        out[k.replace('.gamma_1', '.ls1.gamma').replace('.gamma_2', '.ls2.gamma')] = v
    return out


NAVER_TYPES = ('naver_axial', 'naver_mixed')


def checkpoint_family(state: Mapping) -> str:
    """The RoPE family of a converted state dict, from its keys: ``'pe'`` (pre-norm),
    ``'naver_mixed'`` (learned RoPE frequencies), ``'dinov3'`` (register tokens and layer
    scale), ``'eva02'`` (SwiGLU without layer scale), ``'naver_axial'`` (cls token and layer
    scale, GELU MLP, no absolute position embedding), else ``'axial'`` (a plain ViT; also
    RoPE-ViT's "-ape" RoPE-Axial, whose keys are those of a DeiT-III ViT)."""
    if 'norm_pre.weight' in state:
        return 'pe'
    if 'blocks.0.attn.rope.freqs' in state:
        return 'naver_mixed'
    if 'reg_token' in state and 'blocks.0.ls1.gamma' in state:
        return 'dinov3'
    if 'blocks.0.mlp.fc1_g.weight' in state and 'blocks.0.ls1.gamma' not in state:
        return 'eva02'
    if ('cls_token' in state and 'blocks.0.ls1.gamma' in state and 'pos_embed' not in state
            and 'blocks.0.mlp.fc1.weight' in state):
        return 'naver_axial'
    return 'axial'


_family = checkpoint_family
_FAMILY_NAMES = {'dinov3': 'DINOv3', 'eva02': 'EVA-02', 'axial': 'plain',
                 'naver_axial': 'RoPE-ViT (RoPE-Axial)', 'naver_mixed': 'RoPE-ViT (RoPE-Mixed)',
                 'pe': 'PE (Perception Encoder)'}


def matching_presets(state: Mapping, family: str | None = None) -> list[str]:
    """Names of the released-model presets whose shapes and options fit a converted
    state dict (family, width, depth, patch, MLP, absolute position embedding, final norm)."""
    from .rope_families import FAMILY_PRESETS
    family = checkpoint_family(state) if family is None else family
    w = state.get('patch_embed.proj.weight')
    if w is None:
        return []
    depth = 1 + max((int(k.split('.')[1]) for k in state if re.match(r'^blocks\.\d+\.', k)),
                    default=-1)
    swiglu = 'blocks.0.mlp.fc1_g.weight' in state
    sub_ln = 'blocks.0.mlp.norm.weight' in state
    names = []
    for name, p in FAMILY_PRESETS.items():
        mlp = p.get('mlp_type', 'gelu')
        if (p['rope_type'] == family and p['arch']['embed_dims'] == w.shape[0]
                and p['arch']['num_layers'] == depth and p['patch_size'] == w.shape[-1]
                and mlp.startswith('swiglu') == swiglu and (mlp == 'swiglu_norm') == sub_ln
                and p.get('use_abs_pos_embed', False) == ('pos_embed' in state)
                and p.get('final_norm', True) == ('norm.weight' in state)):
            names.append(name)
    return names


def describe_state(state: Mapping) -> str:
    """One line naming a converted state dict's family, width, depth and, when it is a
    released model's shape, the ``arch`` preset to build."""
    depth = 1 + max((int(k.split('.')[1]) for k in state if re.match(r'^blocks\.\d+\.', k)),
                    default=-1)
    w = state.get('patch_embed.proj.weight')
    width = int(w.shape[0]) if w is not None else None
    patch = int(w.shape[-1]) if w is not None else None
    family = _family(state)
    swiglu = 'blocks.0.mlp.fc1_g.weight' in state
    text = (f'the checkpoint is a {_FAMILY_NAMES[family]} ViT of width {width}, '
            f'depth {depth}, patch {patch}{", SwiGLU MLP" if swiglu else ""}')
    if family != 'axial':
        names = matching_presets(state, family)
        if names:
            text += f": build it with arch='{names[0]}'"
    return text


def _check_family(state: dict, periods: torch.Tensor | None, model: nn.Module) -> None:
    """Errors for a checkpoint of another family or RoPE convention than ``model``."""
    model_type = getattr(model, 'rope_type', 'axial')
    family = _family(state)
    is_dinov3 = family == 'dinov3'
    if family == 'eva02' and model_type != 'eva02':
        raise CheckpointMismatchError(
            f'Wrong family: {describe_state(state)}, but the model uses rope_type='
            f'{model_type!r}. EVA-02 rescales positions to its pre-training grid, pairs '
            'channels interleaved (base 10000) and has a SwiGLU MLP; build the backbone with '
            'an eva02-* arch.')
    if model_type == 'eva02' and family != 'eva02' and any(k.startswith('blocks.') for k in state):
        raise CheckpointMismatchError(
            f'Wrong family: the model is an EVA-02 ViT (rope_type=\'eva02\', SwiGLU MLP) but '
            f'{describe_state(state)}. Use an EVA-02 checkpoint or another arch.')
    if is_dinov3 and model_type != 'dinov3':
        raise CheckpointMismatchError(
            f'Wrong family: {describe_state(state)}, but the model uses rope_type='
            f'{model_type!r}. DINOv3 rotates by coordinates normalised to [-1, 1] and has '
            'register tokens and layer scale; build the backbone with a dinov3-* arch.')
    if model_type == 'dinov3' and not is_dinov3 and any(k.startswith('blocks.') for k in state):
        raise CheckpointMismatchError(
            f'Wrong family: the model is a DINOv3 ViT (rope_type=\'dinov3\', register tokens, '
            f'layer scale) but {describe_state(state)} without register tokens / layer scale. '
            'Use a DINOv3 checkpoint, or build a plain RoPEViT arch for this one.')
    has_blocks = any(k.startswith('blocks.') for k in state)
    if family == 'pe' and model_type != 'pe':
        raise CheckpointMismatchError(
            f'Wrong family: {describe_state(state)}, but the model uses rope_type='
            f'{model_type!r}. PE has a pre-norm (ln_pre) and rotates by integer (x, y) token '
            'indices + 1 past its cls token; build the backbone with a pe-* arch.')
    if model_type == 'pe' and family != 'pe' and has_blocks:
        raise CheckpointMismatchError(
            f'Wrong family: the model is a PE (Perception Encoder) ViT (pre-norm, '
            f"rope_type='pe') but {describe_state(state)} without a pre-norm. Use a PE "
            'checkpoint or another arch.')
    if family in NAVER_TYPES and model_type not in NAVER_TYPES:
        raise CheckpointMismatchError(
            f'Wrong family: {describe_state(state)}, but the model uses rope_type='
            f'{model_type!r}. RoPE-ViT rotates interleaved channel pairs by integer (x, y) '
            'token indices and has a cls token and layer scale; build the backbone with a '
            'naver-rope-* arch.')
    if family == 'naver_mixed' and model_type == 'naver_axial':
        raise CheckpointMismatchError(
            f'Wrong RoPE convention: {describe_state(state)} with learned per-block RoPE '
            'frequencies (blocks.N.attn.rope.freqs), but the model uses RoPE-Axial (fixed '
            'frequencies); build it with a naver-rope-mixed-* arch.')
    if model_type == 'naver_mixed' and family != 'naver_mixed' and has_blocks:
        raise CheckpointMismatchError(
            f'Wrong RoPE convention: the model uses RoPE-Mixed (learned frequencies per block) '
            f'but {describe_state(state)} without RoPE frequencies (rope.freqs / freqs). Use a '
            'RoPE-Mixed checkpoint, or build a naver-rope-axial-* arch for a RoPE-Axial one.')
    if model_type == 'naver_axial' and family not in ('naver_axial', 'axial') and has_blocks:
        raise CheckpointMismatchError(
            f'Wrong family: the model is a RoPE-ViT (RoPE-Axial) but {describe_state(state)}. '
            'Use a RoPE-ViT checkpoint or another arch.')
    rope = getattr(model, 'rope', None)
    if periods is not None and rope is not None:
        from .rope_families import DINOv3RoPE, dinov3_periods
        mine = dinov3_periods(rope.head_dim, rope.base) if isinstance(rope, DINOv3RoPE) else None
        ok = (mine is not None and mine.shape == periods.shape
              and torch.allclose(mine.float().cpu(), periods.float().cpu(), rtol=1e-2))
        if not ok:
            shown = 'none' if mine is None else [round(float(x), 3) for x in mine.flatten()[:4]]
            raise CheckpointMismatchError(
                f'Wrong RoPE convention: the checkpoint\'s rope_embed.periods '
                f'{[round(float(x), 3) for x in periods.flatten()[:4]]}... '
                f'({periods.numel()} periods) differ from the model\'s '
                f'{getattr(rope, "extra_repr", lambda: "")()} '
                f'({shown}). '
                'Set rope_base (DINOv3: 100) and num_heads to the released model\'s.')


def convert_vit_state_dict(checkpoint: Mapping, model: nn.Module | None = None) -> dict:
    """Return a state dict in ``RoPEVisionTransformer`` keys.

    When ``model`` is given, absolute position embedding and cls token are dropped
    (with a warning) if the model has none, and resized if the grid differs.
    """
    state = _strip_prefix(unwrap_state_dict(checkpoint))
    if any(re.match(r'^layers\.\d+\.', k) for k in state):
        state = _convert_mm_layout(state)
    elif any(re.match(r'^enc_blocks\.\d+\.', k) for k in state):
        state = _convert_croco_layout(state)
    periods = None
    if pe_layout(state):
        state = _convert_pe_layout(state)
    if dinov3_layout(state) is not None:
        state, periods = _convert_dinov3_layout(state)
    elif eva02_layout(state):
        state = _convert_eva02_layout(state)
    else:
        state = _convert_layer_scale_and_mixed(state)
    state = {k: v for k, v in state.items()
             if not any(re.match(p, k) for p in _DROP_PATTERNS)}
    if model is None:
        return state
    _check_family(state, periods, model)
    target = model.state_dict()
    for k, v in state.items():  # upstream RoPE-Mixed frequencies: (2, heads * D/2) per block
        if (k.endswith('.attn.rope.freqs') and k in target and v.shape != target[k].shape
                and v.numel() == target[k].numel()):
            state[k] = v.reshape(target[k].shape)
    for k in [k for k in target if k.endswith('.attn.qkv.bias') and k not in state]:
        if k.replace('.bias', '.weight') in state and getattr(model, 'rope_type', '') == 'dinov3':
            # DINOv3 without qkv bias (timm's non-qkvb models): a zero bias is equivalent
            state[k] = torch.zeros(target[k].shape, dtype=target[k].dtype)
    if ('patch_embed.proj.weight' in state and 'patch_embed.proj.bias' not in state
            and 'patch_embed.proj.bias' in target):
        # mmseg's ViT defaults to patch_bias=False: a zero bias is exactly equivalent
        bias = target['patch_embed.proj.bias']  # (also PE's: no patch bias)
        state['patch_embed.proj.bias'] = torch.zeros(bias.shape, dtype=bias.dtype)
    if 'pos_embed' in state and 'pos_embed' not in target:
        warnings.warn('The checkpoint has an absolute position embedding (pos_embed); this '
                      'model uses RoPE only, so it is dropped. Set use_abs_pos_embed=True to '
                      'keep it.', stacklevel=2)
        state.pop('pos_embed')
    if 'cls_token' in state and 'cls_token' not in target:
        warnings.warn('The checkpoint has a cls_token; the model was built without one '
                      '(with_cls_token=False), so it is dropped.', stacklevel=2)
        state.pop('cls_token')
    if 'pos_embed' in state and 'pos_embed' in target and state['pos_embed'].shape != target['pos_embed'].shape:
        state['pos_embed'] = _resize_pos_embed(state['pos_embed'], target['pos_embed'],
                                               int(getattr(model, 'num_prefix_tokens', 0)))
    return state


def _resize_pos_embed(src: torch.Tensor, dst: torch.Tensor, num_prefix: int) -> torch.Tensor:
    if src.shape[-1] != dst.shape[-1]:
        return src  # left for the mismatch check to report
    src_prefix = src.shape[1] - int(round((src.shape[1] - num_prefix) ** 0.5) ** 2)
    grid_src = src[:, src_prefix:]
    gs = int(round(grid_src.shape[1] ** 0.5))
    n_dst = dst.shape[1] - num_prefix
    gd = int(round(n_dst ** 0.5))
    if gs * gs != grid_src.shape[1] or gd * gd != n_dst:
        return src
    grid = grid_src.reshape(1, gs, gs, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid.float(), size=(gd, gd), mode='bicubic',
                                           align_corners=False).to(src.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, gd * gd, -1)
    prefix = src[:, :num_prefix] if src_prefix >= num_prefix else dst[:, :num_prefix]
    return torch.cat([prefix, grid], dim=1)


_OPTIONAL_KEYS = ('cls_token', 'pos_embed')


def mismatch_report(state: Mapping, target: Mapping, missing: list[str],
                    unexpected: list[str]) -> list[str]:
    """Lines naming the shape mismatches between ``state`` and ``target`` and the given
    missing / unexpected keys (first 10 of each); empty when the checkpoint fits."""
    shapes = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}'
              for k, v in state.items() if k in target and v.shape != target[k].shape]
    lines = []
    if shapes:
        more = f'\n  ... and {len(shapes) - 10} more' if len(shapes) > 10 else ''
        lines.append('shape mismatch (is the checkpoint for another width/arch?):\n  '
                     + '\n  '.join(shapes[:10]) + more)
    if missing:
        lines.append(f'missing in checkpoint ({len(missing)}): {missing[:10]}')
    if unexpected:
        lines.append(f'unexpected in checkpoint ({len(unexpected)}): {unexpected[:10]}')
    return lines


def load_vit_state_dict(model: nn.Module, checkpoint: Mapping, strict: bool = True) -> dict:
    """Convert ``checkpoint`` and load it into ``model``.

    A cls token or absolute position embedding that the checkpoint lacks keeps its
    fresh initialisation (with a warning); any other missing or unexpected key is an
    error when ``strict``.

    Raises:
        CheckpointMismatchError: shapes differ, or (``strict``) keys are missing or
            unexpected; the message names the offending keys.
    """
    state = convert_vit_state_dict(checkpoint, model)
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    optional_missing = [k for k in missing if k in _OPTIONAL_KEYS]
    missing = [k for k in missing if k not in _OPTIONAL_KEYS]
    lines = mismatch_report(state, target, missing if strict else [],
                            unexpected if strict else [])
    if lines:
        raise CheckpointMismatchError(
            'The checkpoint does not match the ViT (check arch / patch_size / depth):\n'
            + '\n'.join(lines) + '\n' + describe_state(state))
    if optional_missing:
        warnings.warn(f'The checkpoint has no {optional_missing}; they keep their random '
                      'initialisation.', stacklevel=2)
    model.load_state_dict(state, strict=False)
    return dict(missing=missing + optional_missing, unexpected=unexpected)
