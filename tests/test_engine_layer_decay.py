"""Layer-wise learning-rate decay groups for the ViT."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmwinwin  # noqa: F401


class Segmentor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        from mmwinwin.layers import RoPEVisionTransformer
        self.backbone = RoPEVisionTransformer(arch=dict(embed_dims=16, num_layers=3, num_heads=2),
                                              with_cls_token=True)
        self.decode_head = torch.nn.Conv2d(16, 4, 1)


def _groups(decay_rate=0.5, **paramwise):
    model = Segmentor()
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrapper = build_optim_wrapper(model, dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
            constructor='ViTLayerDecayOptimizerConstructor',
            paramwise_cfg=dict(decay_rate=decay_rate, **paramwise)))
    lookup = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lookup[names[id(p)]] = (group['lr'], group['weight_decay'])
    return lookup


def test_lr_decays_with_depth():
    g = _groups(decay_rate=0.5)  # num_layers read from the backbone (3)
    assert g['backbone.patch_embed.proj.weight'] == (0.5 ** 4, 0.05)
    assert g['backbone.cls_token'] == (0.5 ** 4, 0.0)
    assert g['backbone.blocks.0.attn.qkv.weight'] == (0.5 ** 3, 0.05)
    assert g['backbone.blocks.2.mlp.fc1.weight'] == (0.5 ** 1, 0.05)
    assert g['backbone.blocks.2.mlp.fc1.bias'] == (0.5 ** 1, 0.0)
    assert g['backbone.blocks.1.norm1.weight'] == (0.5 ** 2, 0.0)
    assert g['backbone.norm.weight'] == (1.0, 0.0)
    assert g['decode_head.weight'] == (1.0, 0.05)


def test_bad_paramwise_cfg_is_refused():
    with pytest.raises(KeyError, match='decay_rte'):
        _groups(decay_rte=0.5)
