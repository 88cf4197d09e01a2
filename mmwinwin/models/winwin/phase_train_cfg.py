"""The detector heads' training settings of the full-image phase (``full_image_phase.train_cfg``).

An mmdet detector reads its ``train_cfg`` once, when it is built: each head keeps its part
(``TwoStageDetector`` hands ``train_cfg.rpn`` to the RPN head and ``train_cfg.rcnn`` to the
RoI head, ``MaskFormer`` the whole of it to its head) and builds from it the assigner and the
sampler it uses at every step. A Win-Win detection config sizes these per *window* (fewer
anchors, RoIs, proposals and mask points than its full-resolution twin samples per image), and
its whole-image phase runs the host's loss with the same heads, so without a phase setting a
whole-image step samples per image what a window step samples per window.

:func:`phase_head_settings` builds, from a second ``train_cfg``, everything each head would
have built from it in its ``__init__`` (mmdet 3.x):

* the detector: ``train_cfg`` (``TwoStageDetector.loss`` reads ``rpn_proposal`` from it, with
  ``test_cfg.rpn`` as the default);
* an anchor head (the RPN head of a two-stage detector): ``train_cfg`` = ``train_cfg.rpn``,
  ``assigner`` from its ``assigner`` and ``sampler`` from its ``sampler`` (a ``PseudoSampler``
  when it has none), the sampler's context the head;
* a standard RoI head: ``train_cfg`` = ``train_cfg.rcnn``, ``bbox_assigner`` and
  ``bbox_sampler`` as ``init_assigner_sampler`` builds them (the bbox and mask heads get
  ``rcnn_train_cfg`` from it at each step);
* a Mask2Former head: ``train_cfg`` = the whole ``train_cfg``, ``assigner``, ``sampler``,
  ``num_points`` (default 12544), ``oversample_ratio`` (3.0) and ``importance_sample_ratio``
  (0.75) (its panoptic fusion head keeps no training setting).

:func:`swapped_attributes` sets them for the duration of a whole-image step and puts the
window settings back afterwards, also after an error. No parameter changes: the same weights
train under either setting.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

from mmdet.models.dense_heads import AnchorHead, Mask2FormerHead
from mmdet.models.detectors import MaskFormer, TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.registry import TASK_UTILS
from mmengine.config import ConfigDict
from torch import nn

__all__ = ['phase_head_settings', 'swapped_attributes']

Settings = list[tuple[nn.Module, dict]]


def _need(cfg: ConfigDict, key: str, detector: nn.Module) -> ConfigDict:
    if cfg.get(key) is None:
        raise ValueError(f"full_image_phase.train_cfg has no '{key}': it is the whole train_cfg "
                         f'of the whole-image steps of {type(detector).__name__}, in the form of '
                         f'model.train_cfg (rpn, rpn_proposal, rcnn for a two-stage detector), '
                         f"e.g. the full-resolution config's; got keys {sorted(cfg)}.")
    return cfg[key]


def _sampler(cfg: ConfigDict, head: nn.Module):
    return TASK_UTILS.build(cfg['sampler'], default_args=dict(context=head))


def _anchor_head(head: AnchorHead, cfg: ConfigDict) -> dict:
    sampler = (_sampler(cfg, head) if cfg.get('sampler', None) is not None
               else PseudoSampler(context=head))
    return dict(train_cfg=cfg, assigner=TASK_UTILS.build(cfg['assigner']), sampler=sampler)


def _roi_head(head: StandardRoIHead, cfg: ConfigDict) -> dict:
    return dict(train_cfg=cfg, bbox_assigner=TASK_UTILS.build(cfg.assigner),
                bbox_sampler=_sampler(cfg, head))


def _mask2former_head(head: Mask2FormerHead, cfg: ConfigDict) -> dict:
    return dict(train_cfg=cfg, assigner=TASK_UTILS.build(cfg['assigner']),
                sampler=_sampler(cfg, head), num_points=cfg.get('num_points', 12544),
                oversample_ratio=cfg.get('oversample_ratio', 3.0),
                importance_sample_ratio=cfg.get('importance_sample_ratio', 0.75))


def _head(head: nn.Module, cfg: ConfigDict, kinds: tuple) -> dict:
    for kind, build in kinds:
        if isinstance(head, kind):
            return build(head, cfg)
    raise TypeError(f'full_image_phase.train_cfg: no rule for a {type(head).__name__} head '
                    f'(supported: {", ".join(k.__name__ for k, _ in kinds)} and their '
                    f'subclasses). Drop full_image_phase.train_cfg.')


def phase_head_settings(detector: nn.Module, train_cfg: dict) -> Settings:
    """``[(module, {attribute: value})]``: what ``detector`` and its heads would have built
    from ``train_cfg`` (the module docstring)."""
    cfg = ConfigDict(copy.deepcopy(dict(train_cfg)))
    out: Settings = [(detector, dict(train_cfg=cfg))]
    if isinstance(detector, TwoStageDetector):
        if detector.with_rpn:
            out.append((detector.rpn_head,
                        _head(detector.rpn_head, _need(cfg, 'rpn', detector),
                              ((AnchorHead, _anchor_head),))))
        out.append((detector.roi_head, _head(detector.roi_head, _need(cfg, 'rcnn', detector),
                                             ((StandardRoIHead, _roi_head),))))
    elif isinstance(detector, MaskFormer):
        out.append((detector.panoptic_head,
                    _head(detector.panoptic_head, cfg, ((Mask2FormerHead, _mask2former_head),))))
    else:
        raise TypeError(f'full_image_phase.train_cfg is for two-stage detectors and Mask2Former; '
                        f'got {type(detector).__name__}. Drop full_image_phase.train_cfg.')
    return out


@contextmanager
def swapped_attributes(settings: Settings):
    """Within the block each module's attributes are those of ``settings``; the previous
    values come back on leaving, also after an error."""
    saved = [(module, {name: getattr(module, name) for name in attrs})
             for module, attrs in settings]
    try:
        for module, attrs in settings:
            for name, value in attrs.items():
                setattr(module, name, value)
        yield
    finally:
        for module, attrs in saved:
            for name, value in attrs.items():
                setattr(module, name, value)
