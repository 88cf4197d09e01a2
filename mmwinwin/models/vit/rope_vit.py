"""``RoPEViT``: the registered OpenMMLab backbone over ``RoPEVisionTransformer``.

State-dict keys are the core model's own (timm layout), so checkpoints move freely
between the pure-PyTorch model and the registered one.
"""
from __future__ import annotations

from mmengine.logging import print_log
from mmengine.model import BaseModule

from ...layers import RoPEVisionTransformer, load_vit_state_dict
from ...layers.settings import check_forwarded_kwargs
from ...registry import register


@register('MODELS')
class RoPEViT(RoPEVisionTransformer, BaseModule):
    """Plain ViT with 2D RoPE for mmseg / mmdet configs.

    Takes every argument of :class:`mmwinwin.layers.RoPEVisionTransformer` plus
    ``init_cfg``. ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` loads a ViT
    checkpoint in timm / DeiT / MAE or mmseg layout (keys converted; an absolute
    position embedding is dropped with a warning for RoPE-only models), or a DINOv3
    checkpoint in timm's or the upstream release layout into a ``dinov3-*`` arch; a
    checkpoint that does not fit (size, family, RoPE convention) raises
    ``CheckpointMismatchError`` naming the keys and the arch to build.
    """

    def __init__(self, *args, init_cfg: dict | list | None = None, **kwargs) -> None:
        # a misspelt argument (drop_path_rat=...) gets the closest name, under any tool
        check_forwarded_kwargs(self, RoPEVisionTransformer.__init__, kwargs)
        super().__init__(*args, **kwargs)
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            unknown = set(cfg) - {'type', 'checkpoint', 'prefix', 'map_location'}
            if unknown:
                raise KeyError(f'Unknown keys {sorted(unknown)} in RoPEViT init_cfg; allowed: '
                               "type='Pretrained', checkpoint, prefix, map_location.")
            from ...utils.checkpoint import load_checkpoint  # weights-only, allow-list
            ckpt = load_checkpoint(cfg['checkpoint'], map_location=cfg.get('map_location', 'cpu'))
            if cfg.get('prefix'):
                from ...layers.vit.checkpoint import unwrap_state_dict
                prefix = cfg['prefix'].rstrip('.') + '.'
                ckpt = {k[len(prefix):]: v for k, v in unwrap_state_dict(ckpt).items()
                        if k.startswith(prefix)}
            load_vit_state_dict(self, ckpt)
            print_log(f'RoPEViT: loaded pretrained weights from {cfg["checkpoint"]}',
                      logger='current')
            self._is_init = True
            return
        if cfg:
            super().init_weights()
        # otherwise the timm-style initialisation of __init__ stands
