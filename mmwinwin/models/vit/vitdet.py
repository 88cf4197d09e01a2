"""``RoPEViTDet``: registered ViTDet-style backbone over ``ViTDetVisionTransformer``."""
from __future__ import annotations

from ...layers import ViTDetVisionTransformer
from ...registry import register
from .rope_vit import RoPEViT


@register('MODELS')
class RoPEViTDet(ViTDetVisionTransformer, RoPEViT):
    """Plain RoPE ViT with window attention in most blocks and global attention in
    ``global_indices`` (ViTDet), for mmdet / mmseg configs.

    Same arguments as :class:`mmwinwin.layers.ViTDetVisionTransformer` plus ``init_cfg``
    (``Pretrained`` loads timm / MAE / mmseg ViT checkpoints as :class:`RoPEViT` does).
    Returns a tuple with one ``(B, C, H/16, W/16)`` map per ``out_indices`` entry.
    """

    def forward(self, img):  # noqa: D102
        return tuple(super().forward(img))
