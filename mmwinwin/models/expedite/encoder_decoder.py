"""``ExpeditedEncoderDecoder``: mmseg's ``EncoderDecoder`` that can rebuild the full
token grid *after* the decode head (Expedite's placement for Segmenter).

With an expedited backbone whose ``expedite.reconstruct == 'logits'``, inference runs
the decode head on the cluster grid and reconstructs the class logits (reconstruction
is linear, so this is cheap: ``num_classes`` channels instead of ``embed_dims``, and
the head itself runs on the clusters). The head must keep the token grid (Segmenter's
mask transformer, FCN-style heads); otherwise a clear error says to use
``reconstruct='backbone'``. The tensor mode (``_forward``, what mmseg's ``get_flops`` and
mmengine's ``FlopAnalyzer`` trace) follows the same placement and returns the
reconstructed logits before resizing. Training and every other placement behave exactly
as ``EncoderDecoder``; no parameter is added, so checkpoints load unchanged.
"""
from __future__ import annotations

from typing import List

from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from ...layers.expedite.reconstruction import reconstruct_map
from ...registry import register
from ..segmentor_settings import check_segmentor_settings

__all__ = ['ExpeditedEncoderDecoder']


@register('MODELS')
class ExpeditedEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` with optional token reconstruction on the logits."""

    def __init__(self, *args, **kwargs) -> None:
        check_segmentor_settings(kwargs.get('test_cfg'), kwargs.get('train_cfg'),
                                 kwargs.get('decode_head'), kwargs.get('auxiliary_head'))
        super().__init__(*args, **kwargs)

    def _logits_placement(self) -> bool:
        s = getattr(self.backbone, 'expedite', None)
        return s is not None and s.reconstruct == 'logits'

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        if not self._logits_placement():
            return super().encode_decode(inputs, batch_img_metas)
        return self.decode_head.predict_by_feat(self._logits_on_clusters(inputs),
                                                batch_img_metas)

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        if not self._logits_placement():
            return super()._forward(inputs, data_samples)
        return self._logits_on_clusters(inputs)

    def _logits_on_clusters(self, inputs: Tensor) -> Tensor:
        """Head on the clusters, logits reconstructed on the token grid (not resized)."""
        feats, weights = self.backbone.forward_expedited(inputs, reconstruct=False)
        if self.with_neck:
            feats = self.neck(feats)
        logits = self.decode_head.forward(feats)
        if weights is not None:
            if tuple(logits.shape[2:]) != tuple(weights.cluster_grid):
                raise ValueError(
                    f"expedite reconstruct='logits' needs a decode head whose logits stay on "
                    f'the token grid, but {type(self.decode_head).__name__} returned '
                    f'{tuple(logits.shape[2:])} for a {weights.cluster_grid} cluster grid. '
                    f"Use reconstruct='backbone' for this model.")
            logits = reconstruct_map(logits, weights)
        return logits
