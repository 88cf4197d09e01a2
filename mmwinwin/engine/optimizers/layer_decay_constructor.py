"""Layer-wise learning-rate decay for plain ViTs (BEiT / MAE fine-tuning recipe).

Block ``i`` (0-based) of a ``num_layers``-deep backbone gets
``lr * decay_rate ** (num_layers - i)``; the patch embedding, cls and register tokens
and position embedding get ``lr * decay_rate ** (num_layers + 1)``; the final norm, necks and heads
get ``lr``. Biases, norms and tokens get no weight decay.
"""
from __future__ import annotations

import re

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from ...registry import register

_EMBED_KEYS = ('patch_embed', 'cls_token', 'reg_token', 'pos_embed', 'absolute_pos_embed')
_NO_DECAY_NAMES = ('cls_token', 'reg_token', 'pos_embed', 'absolute_pos_embed',
                   'relative_position_bias_table')


def vit_layer_id(name: str, num_layers: int) -> int:
    """Depth of a parameter: 0 for embeddings, i + 1 for block i, num_layers + 1 else."""
    if not name.startswith('backbone.'):
        return num_layers + 1
    rest = name[len('backbone.'):]
    if rest.startswith(_EMBED_KEYS):
        return 0
    match = re.match(r'^(?:blocks|layers)\.(\d+)\.', rest)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


@register('OPTIM_WRAPPER_CONSTRUCTORS')
class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """``paramwise_cfg=dict(decay_rate=0.65, num_layers=12)``; ``num_layers`` defaults to
    the backbone's own ``num_layers``."""

    def add_params(self, params: list, module: nn.Module, **kwargs) -> None:
        if is_model_wrapper(module):
            module = module.module
        cfg = dict(self.paramwise_cfg)
        unknown = set(cfg) - {'decay_rate', 'num_layers'}
        if unknown:
            raise KeyError(f'ViTLayerDecayOptimizerConstructor: unknown paramwise_cfg keys '
                           f'{sorted(unknown)}; it takes decay_rate and num_layers.')
        decay_rate = float(cfg.get('decay_rate', 0.65))
        if not 0 < decay_rate <= 1:
            raise ValueError(f'decay_rate must be in (0, 1], got {decay_rate}.')
        num_layers = cfg.get('num_layers', getattr(getattr(module, 'backbone', None), 'num_layers', None))
        if num_layers is None:
            raise ValueError('ViTLayerDecayOptimizerConstructor could not find the backbone '
                             'depth; set paramwise_cfg.num_layers.')
        weight_decay = self.base_wd or 0.0
        groups: dict[tuple[int, bool], dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id = vit_layer_id(name, num_layers)
            no_decay = param.ndim == 1 or name.endswith('.bias') or \
                name.split('.')[-1] in _NO_DECAY_NAMES
            key = (layer_id, no_decay)
            if key not in groups:
                scale = decay_rate ** (num_layers + 1 - layer_id)
                groups[key] = dict(params=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0.0 if no_decay else weight_decay,
                                   param_names=[])
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        for key in sorted(groups):
            group = groups[key]
            print_log(f'layer {key[0]:>2} {"no-decay" if key[1] else "decay   "} '
                      f'lr_scale {group["lr_scale"]:.4f} ({len(group["params"])} params)',
                      logger='current', level=10)  # DEBUG
            group.pop('param_names')
            params.append(group)
