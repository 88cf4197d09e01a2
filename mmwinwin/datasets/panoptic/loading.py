"""``LoadPanopticAnnotations``: mmdet's panoptic loading without ``panopticapi``.

mmdet's ``LoadPanopticAnnotations`` imports ``panopticapi`` (not on PyPI) only for its
``rgb2id``; this subclass uses mmwinwin's own and is otherwise mmdet's transform. Registered in
mmwinwin's scope only (mmdet has the name): configs say ``type='mmwinwin.LoadPanopticAnnotations'``.
"""
from __future__ import annotations

from mmdet.datasets.transforms import LoadAnnotations
from mmdet.datasets.transforms import LoadPanopticAnnotations as MMDetLoadPanopticAnnotations

from ...fileio.panoptic import rgb_to_id
from ...registry import register


@register('TRANSFORMS', hosts=False)  # mmdet has the name: configs say mmwinwin.LoadPanopticAnnotations
class LoadPanopticAnnotations(MMDetLoadPanopticAnnotations):
    """Same arguments and outputs as mmdet's ``LoadPanopticAnnotations``."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = True,
                 with_seg: bool = True, box_type: str = 'hbox', imdecode_backend: str = 'cv2',
                 backend_args: dict | None = None) -> None:
        self.rgb2id = rgb_to_id
        LoadAnnotations.__init__(self, with_bbox=with_bbox, with_label=with_label,
                                 with_mask=with_mask, with_seg=with_seg, with_keypoints=False,
                                 box_type=box_type, imdecode_backend=imdecode_backend,
                                 backend_args=backend_args)
