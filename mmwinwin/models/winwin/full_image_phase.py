"""The full-image phase of Win-Win training: whole images for the last iterations.

Win-Win trains on the tokens of a few windows per image. A *full-image phase* switches the
same model, from iteration ``begin`` on, to the host's ordinary loss on the whole image
(every token, pixel maps uncropped; the windows recorded in the metainfo are ignored), so the
last part of training sees the full context at full-resolution cost. Before ``begin`` the
model trains on windows exactly as without the option.

A model cannot see the training iteration. :class:`FullImagePhaseMixin` holds the setting and
the progress that :class:`~mmwinwin.engine.hooks.FullImagePhaseHook` hands it before every
training iteration (from ``runner.iter``, which a ``--resume`` restores, so a resumed run
lands in the right phase). A configured phase without that progress is an error naming the
hook, never a silent window-only run. Every config of this project declares the hook
(``configs/_base_/mmwinwin_hooks.py``).

``full_image_phase`` settings (one of the three):

* ``begin``: the first (0-based) iteration that trains on whole images, e.g.
  ``dict(begin=2000)`` with ``max_iters=2400``: 2000 window iterations, then 400 whole-image
  iterations;
* ``begin_fraction``: the same as a fraction of ``train_cfg.max_iters`` (``0.85`` ->
  ``begin = round(0.85 * max_iters)``), so the phase follows a changed schedule length. A run
  too short for the fraction to leave a whole-image iteration (``5 / 6`` of 2 iterations)
  still ends with one: ``begin`` is at most ``max_iters - 1``. The configs under
  ``configs/winwin*`` set ``dict(begin_fraction=5 / 6)`` (docs/winwin.md: the recipe).
* ``every``: whole images interleaved instead of a final phase: iteration ``i`` trains on
  whole images when ``i % every == every - 1`` (``dict(every=6)``: iterations 5, 11, 17, ...,
  the recipe's share of whole-image steps, 1/6, spread over the whole schedule), on windows
  otherwise. A design option measured against the phase (docs/winwin.md).

and, with any of them, ``scale`` (default 1): the phase's whole images are resized by
``scale`` (bilinear, antialiased) before the patch embedding, and each of their tokens is
placed at the full image's coordinates of its centre (a token ``(r, c)`` of an image resized
by ``s`` at ``((r + 0.5) / s - 0.5, (c + 0.5) / s - 0.5)`` in the full image's token grid,
which also is the RoPE grid of the grid-normalised families), the same frame as the windows'
tokens in training and the whole image's at test time. The pixel targets (labels, depth) are
resized with the image (nearest pixel centre), as a resizing transform of the pipeline would.
``dict(begin_fraction=2 / 3, scale=0.5)``: a longer phase at about a window step's cost (a
quarter of the tokens and of the pixels). A design option of this project (the paper trains on windows only); segmentor
and depth estimator only.

and, with ``scale`` below 1 and ``begin`` or ``begin_fraction``, ``full_size_fraction``: from
``round(full_size_fraction * max_iters)`` on the phase's whole images are at full size, so the
phase has two stages, resized whole images and then full-size ones.
``dict(begin_fraction=1 / 3, scale=0.5, full_size_fraction=2 / 3)``: windows for the first
third, whole images at half size (about a window step's cost at patch 8) for the second, at
full size for the last. A design option of this project, measured against the phase
(docs/winwin.md, variant (E)); segmentor and depth estimator only.

and, with any of them, ``batch_fraction`` (default 1): a whole-image step trains on the first
``ceil(batch_fraction * B)`` images of its batch of ``B`` (the sampler's order is random, so a
random subset) and leaves the others, so a phase step costs about ``batch_fraction`` of a
whole-image step while the learning rate and the number of phase steps stay as set. The
dataloader's batch size is fixed for a run, so the share is taken in the model.
``dict(begin_fraction=2 / 3, batch_fraction=0.5)``: the last third on whole images at about
the cost of a last sixth: the same whole images seen, over twice the updates. A design option
of this project, measured against the phase (docs/winwin.md, docs/detection.md); segmentor,
depth estimator and the Win-Win detectors (not the flow model).

and, with any of them, ``frozen_blocks`` (default 0): a whole-image step keeps the backbone's
patch embedding and its first ``frozen_blocks`` transformer blocks as the windows trained them:
they run without autograd (:func:`frozen_lower_blocks`), so no gradient reaches them and the
optimizer leaves them unchanged (AdamW skips a parameter without a gradient), while the later
blocks and the heads train on the whole images. A phase step then stores no activations of
those blocks and skips their backward pass. ``dict(begin_fraction=2 / 3, frozen_blocks=3)`` on a
4-block ViT: the last third on whole images, the last block and the heads learning from them
(measured below the full phase on the long-range tasks: docs/winwin.md, variant (u)). In
distributed training some parameters get no gradient in the phase, so the DDP wrapper needs
``model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)``
(:class:`~mmwinwin.engine.hooks.FullImagePhaseHook` refuses to start without it). A design
option of this project, measured against the phase (docs/winwin.md); segmentor and depth
estimator only.

and, for the Win-Win detectors, ``train_cfg``: the detector's whole ``train_cfg`` for the
whole-image steps, in place of ``model.train_cfg`` (which the window steps keep). A Win-Win
detection config samples anchors, RoIs or mask points per *window* (its ``model.train_cfg``),
so without it a whole-image step samples per image what a window step samples per window;
the detection configs give the phase their full-resolution twin's ``train_cfg``
(:mod:`~mmwinwin.models.winwin.phase_train_cfg`). A design option of this project, measured
in docs/winwin.md.

Used by :class:`~mmwinwin.models.winwin.WinWinEncoderDecoder`,
:class:`~mmwinwin.models.winwin.WinWinDepthEstimator` and
:class:`~mmwinwin.models.flow.WinWinFlowEstimator` (whole frame pairs), and by the Win-Win
detectors :class:`~mmwinwin.models.winwin.WinWinTwoStageDetector` and
:class:`~mmwinwin.models.winwin.WinWinMask2Former` (the host mmdet loss on whole images; no
``scale``: ``mmwinwin/models/winwin/detectors.py``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from ...layers.settings import check_settings_keys

__all__ = ['FullImagePhaseMixin', 'check_full_image_phase', 'frozen_lower_blocks',
           'full_image_phase_batch', 'full_image_phase_begin', 'full_image_phase_frozen_blocks',
           'full_image_phase_full_size_begin', 'full_image_phase_scale']

_WHEN = ('begin', 'begin_fraction', 'every')
_KEYS = _WHEN + ('scale', 'full_size_fraction', 'batch_fraction', 'frozen_blocks', 'train_cfg')
_HOOK = ("add dict(type='FullImagePhaseHook') to custom_hooks (every mmwinwin config has it "
         "through configs/_base_/mmwinwin_runtime.py), or call "
         "model.set_train_progress(iteration, max_iters) before each step")


def _fraction(setting: dict, key: str, meaning: str) -> float | None:
    """``setting[key]`` if it is a number in (0, 1] or absent; else an error naming it."""
    value = setting.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 < value <= 1):
        raise ValueError(f'full_image_phase.{key} must be a number in (0, 1] ({meaning}); '
                         f'got {value!r}.')
    return value


def check_full_image_phase(setting: dict | None, resized_for: str | None = None,
                           heads_train_cfg: bool = False,
                           part_batch: bool | None = None) -> dict | None:
    """Validate a ``full_image_phase`` setting; returns it as a plain dict (or None).

    ``resized_for``: for a model that trains its phase at full size only (``scale`` refused),
    what it trains the phase on ("whole frame pairs", "the training images"), named in the
    error. ``heads_train_cfg``: the model takes the phase's own ``train_cfg`` (the Win-Win
    detectors); elsewhere it is refused. ``part_batch``: the model trains a phase step on part
    of its batch (``batch_fraction``); default: unless ``resized_for`` is given."""
    if setting is None:
        return None
    if not isinstance(setting, dict):
        raise TypeError(f'full_image_phase must be a dict such as dict(begin=2000) or '
                        f'dict(begin_fraction=0.85), or None; got {setting!r}.')
    check_settings_keys(setting, _KEYS, 'full_image_phase')
    scale = _fraction(setting, 'scale', "the size of the phase's whole images relative to "
                      'the training images, e.g. 0.5')
    full_size = setting.get('full_size_fraction')
    if full_size is not None:
        if isinstance(full_size, bool) or not isinstance(full_size, (int, float)) \
                or not 0 < full_size < 1:
            raise ValueError(f'full_image_phase.full_size_fraction must be a number in (0, 1) '
                             f"(the fraction of max_iters from which the phase's whole images "
                             f'are at full size, e.g. 2 / 3); got {full_size!r}.')
        if scale in (None, 1):
            raise ValueError(f'full_image_phase={dict(setting)}: full_size_fraction ends the '
                             f'resized stage of a phase whose images are resized (scale < 1), '
                             f'but scale is {scale!r}. Set scale (e.g. 0.5) or drop '
                             f'full_size_fraction.')
        if setting.get('every') is not None:
            raise ValueError(f'full_image_phase={dict(setting)}: full_size_fraction splits a '
                             f'final phase (begin or begin_fraction) into resized and full-size '
                             f'stages; it has no meaning with every. Drop full_size_fraction.')
        begins = setting.get('begin_fraction')
        if isinstance(begins, (int, float)) and not isinstance(begins, bool) \
                and full_size <= begins:
            raise ValueError(f'full_image_phase.full_size_fraction={full_size} must come after '
                             f'begin_fraction={begins}: the phase begins resized, then turns to '
                             f'full size. For a phase at full size throughout drop scale and '
                             f'full_size_fraction.')
    share = _fraction(setting, 'batch_fraction', "the share of each batch's images a "
                      'whole-image step trains on, e.g. 0.5')
    frozen = setting.get('frozen_blocks')
    if frozen is not None and (isinstance(frozen, bool) or not isinstance(frozen, int)
                               or frozen < 0):
        raise ValueError(f'full_image_phase.frozen_blocks must be an integer >= 0 (how many of '
                         f"the backbone's first blocks, with the patch embedding, the phase "
                         f'leaves as the windows trained them, e.g. 2); got {frozen!r}.')
    if part_batch is None:
        part_batch = resized_for is None
    if not part_batch and share not in (None, 1):
        raise ValueError(f"full_image_phase={dict(setting)}: 'batch_fraction' (whole-image "
                         f'steps on part of the batch) is for the Win-Win segmentors, depth '
                         f'estimators and detectors; this model trains its phase on every one '
                         f'of {resized_for}. Drop full_image_phase.batch_fraction.')
    if resized_for is not None and scale not in (None, 1):
        raise ValueError(f"full_image_phase={dict(setting)}: 'scale' (resized whole images) is "
                         f'for the Win-Win segmentors and depth estimators; this model trains '
                         f'its phase on {resized_for} at full size. Drop full_image_phase.scale '
                         f'(and full_size_fraction).')
    if resized_for is not None and frozen:
        raise ValueError(f"full_image_phase={dict(setting)}: 'frozen_blocks' (the backbone's "
                         f'first blocks left unchanged in the phase) is for the Win-Win '
                         f'segmentors and depth estimators; this model trains every block on '
                         f'{resized_for}. Drop full_image_phase.frozen_blocks.')
    heads = setting.get('train_cfg')
    if heads is not None and not heads_train_cfg:
        raise ValueError(f"full_image_phase={dict(setting)}: 'train_cfg' (the heads' training "
                         f'settings in the phase: anchors, RoIs or points sampled per image) '
                         f'is for the Win-Win detectors; the heads of this model sample '
                         f'nothing per image. Drop full_image_phase.train_cfg.')
    if heads is not None and not isinstance(heads, dict):
        raise TypeError(f"full_image_phase.train_cfg must be a dict: the detector's whole "
                        f'train_cfg for the whole-image steps, as model.train_cfg (e.g. the '
                        f"full-resolution config's); got {heads!r}.")
    given = [k for k in _WHEN if setting.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f'full_image_phase needs exactly one of begin (an iteration), '
                         f'begin_fraction (a fraction of max_iters) or every (whole images '
                         f'every N-th iteration); got {dict(setting)!r}. A '
                         f'config that inherits the configs/winwin* recipe (begin_fraction) '
                         f'and sets begin merges the two: write full_image_phase=dict('
                         f'_delete_=True, begin=N), or add model.full_image_phase.'
                         f'begin_fraction=None to --cfg-options.')
    if 'every' in given:
        every = setting['every']
        if isinstance(every, bool) or not isinstance(every, int) or every < 2:
            raise ValueError(f'full_image_phase.every must be an integer >= 2 (whole images '
                             f'every N-th iteration, e.g. 6); got {every!r}. For whole images '
                             f'on every iteration train at full resolution instead.')
    elif 'begin' in given:
        begin = setting['begin']
        if isinstance(begin, bool) or not isinstance(begin, int) or begin < 0:
            raise ValueError(f'full_image_phase.begin must be an integer iteration >= 0 (the '
                             f'first whole-image iteration, counted from 0); got {begin!r}. '
                             f'For a fraction of max_iters use begin_fraction.')
    else:
        frac = setting['begin_fraction']
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise ValueError(f'full_image_phase.begin_fraction must be a number in [0, 1) (e.g. '
                             f'0.85: whole images for the last 15 % of max_iters); got {frac!r}.')
    return dict(setting)


def full_image_phase_scale(setting: dict | None) -> float:
    """The size factor of the phase's whole images (1.0: the training images as they are)."""
    scale = (setting or {}).get('scale')
    return 1.0 if scale is None else float(scale)


def full_image_phase_full_size_begin(setting: dict | None, max_iters: int | None) -> int | None:
    """The first iteration whose whole images are at full size in a two-stage phase
    (``full_size_fraction``), ``None`` without one. It must come after the phase's begin and
    before the end of training: a stage that never runs is an error, not a silent phase."""
    frac = (setting or {}).get('full_size_fraction')
    if frac is None:
        return None
    if max_iters is None:
        raise ValueError('full_image_phase.full_size_fraction needs the run length '
                         '(max_iters): ' + _HOOK + '.')
    at = int(round(frac * max_iters))
    begin = full_image_phase_begin(setting, max_iters)
    if not begin < at < max_iters:
        raise ValueError(f'full_image_phase={dict(setting)} over max_iters={max_iters}: the '
                         f'resized stage runs from iteration {begin} and full size from {at}, '
                         f'so one stage is empty. Choose full_size_fraction so that both '
                         f'stages have iterations, or drop it.')
    return at


def full_image_phase_batch(setting: dict | None, batch_size: int) -> int:
    """How many of a batch's ``batch_size`` images a whole-image step trains on:
    ``ceil(batch_fraction * batch_size)``, at least 1 (all of them without the option)."""
    share = (setting or {}).get('batch_fraction')
    if share is None:
        return batch_size
    return max(1, min(batch_size, math.ceil(round(float(share) * batch_size, 6))))


def full_image_phase_frozen_blocks(setting: dict | None) -> int:
    """How many of the backbone's first blocks a whole-image step leaves unchanged (0: none)."""
    return int((setting or {}).get('frozen_blocks') or 0)


@contextmanager
def frozen_lower_blocks(backbone: nn.Module, count: int):
    """Within the block, the backbone's patch embedding and first ``count`` blocks run without
    autograd (``torch.no_grad``; values unchanged): a forward pre-hook on
    ``backbone.patch_embed`` turns gradients off and a forward hook on
    ``backbone.blocks[count - 1]`` turns them back on, so they get no gradient, store no
    activations and have no backward pass (nor what the backbone adds between the embedding
    and block 0: prefix tokens, an absolute position embedding, a pre-norm). The grad mode of
    the caller is restored on leaving, also after an error. ``count=0``: nothing changes."""
    if not count:
        yield
        return
    enabled = torch.is_grad_enabled()

    def grad_off(module, args) -> None:  # hooks return None: inputs and outputs unchanged
        torch.set_grad_enabled(False)

    def grad_back(module, args, output) -> None:
        torch.set_grad_enabled(enabled)

    handles = [backbone.patch_embed.register_forward_pre_hook(grad_off),
               backbone.blocks[count - 1].register_forward_hook(grad_back)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.set_grad_enabled(enabled)


def full_image_phase_begin(setting: dict, max_iters: int | None) -> int:
    """The first whole-image iteration of ``setting`` in a run of ``max_iters`` iterations."""
    if setting.get('every') is not None:
        begin = int(setting['every']) - 1
    elif setting.get('begin') is not None:
        begin = int(setting['begin'])
    else:
        if max_iters is None:
            raise ValueError('full_image_phase.begin_fraction needs the run length '
                             '(max_iters): ' + _HOOK + '.')
        # a fraction asks for a phase: a short (debug) run still ends with one whole-image step
        begin = min(int(round(setting['begin_fraction'] * max_iters)), max(max_iters - 1, 0))
    if max_iters is not None and begin >= max_iters:
        raise ValueError(f'full_image_phase begins at iteration {begin}, not before the end of '
                         f'training (max_iters={max_iters}): the whole-image phase would never '
                         f'run. Set begin below max_iters, or drop full_image_phase.')
    return begin


class FullImagePhaseMixin:
    """The model side of the full-image phase: the setting, and the training progress
    that :class:`~mmwinwin.engine.hooks.FullImagePhaseHook` sets."""

    full_image_phase: dict | None = None
    train_iteration: int | None = None
    train_max_iters: int | None = None

    def _init_full_image_phase(self, setting: dict | None, **options) -> None:
        """``options``: what the model takes, as :func:`check_full_image_phase`'s."""
        self.full_image_phase = check_full_image_phase(setting, **options)

    def set_train_progress(self, iteration: int, max_iters: int | None = None) -> None:
        """Record the (0-based) iteration about to be trained and the run length."""
        if self.full_image_phase is not None:  # checks begin against max_iters
            full_image_phase_begin(self.full_image_phase, max_iters)
            full_image_phase_full_size_begin(self.full_image_phase, max_iters)
        self.train_iteration = int(iteration)
        self.train_max_iters = None if max_iters is None else int(max_iters)

    def in_full_image_phase(self) -> bool:
        """Whether this training step trains on whole images."""
        if self.full_image_phase is None:
            return False
        if self.train_iteration is None:
            raise RuntimeError(f'{type(self).__name__} has full_image_phase='
                               f'{self.full_image_phase} but does not know the training '
                               f'iteration: {_HOOK}.')
        every = self.full_image_phase.get('every')
        if every is not None:
            return self.train_iteration % every == every - 1
        return self.train_iteration >= full_image_phase_begin(self.full_image_phase,
                                                              self.train_max_iters)

    def full_image_phase_scale_now(self) -> float:
        """The size factor of this step's whole images: the setting's ``scale``, or 1 from
        ``full_size_fraction`` on (a two-stage phase)."""
        full_size = full_image_phase_full_size_begin(self.full_image_phase, self.train_max_iters)
        if full_size is not None and self.train_iteration >= full_size:
            return 1.0
        return full_image_phase_scale(self.full_image_phase)
