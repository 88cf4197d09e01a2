"""``WinWinWindows``: the window-masking transform of Win-Win training.

Runs after the geometric augmentations (resize, crop, flip) of an mmseg, mmdet or flow
pipeline (for a pair it reads frame 1's size; both frames share the windows), samples N square non-overlapping windows aligned to the patch grid over the
image (see :mod:`mmwinwin.layers.winwin.windows`) and records them in the results, so that
``PackSegInputs`` / ``PackDetInputs`` put them into the sample's metainfo when their
``meta_keys`` include :data:`WINWIN_META_KEYS`. The image itself is left whole: the
Win-Win models embed only the windows' pixels; ``WinWinPackSegInputs(pixels='windows')`` /
``WinWinPackDetInputs(pixels='windows')`` pack only those pixels (a canvas) instead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.utils.data
from mmcv.transforms import BaseTransform
from mmengine.dist import get_rank

from ...layers.winwin.windows import (check_int, check_window_args, rope_grid_size,
                                      same_class_pair_windows, sample_grid_size,
                                      sample_random_tokens, sample_windows,
                                      window_stream_generator, windows_holding)
from ...registry import register

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS']

#: metainfo keys written by WinWinWindows; WinWinPackSegInputs / WinWinPackDetInputs pack them
#: (or add them to PackSegInputs' / PackDetInputs' meta_keys).
WINWIN_META_KEYS = ('winwin_windows', 'winwin_token_index', 'winwin_grid', 'winwin_patch_size',
                    'winwin_window_stages')


@register('TRANSFORMS')
class WinWinWindows(BaseTransform):
    """Sample Win-Win windows for one training image.

    Args:
        num_windows: N windows per image (2 in the paper).
        window_size: side in tokens, or a ``(min, max)`` range sampled per image.
        token_budget: alternatively, total kept tokens (side = floor(sqrt(budget / N))).
        patch_size: the backbone's patch size in pixels (required): windows are sampled
            on the backbone's token grid. The config states it (so mmseg's and mmdet's own
            ``tools/train.py`` run the config as it is); the model checks at its first
            training step that it equals its backbone's (``winwin_patch_size``).
        shrink_to_fit: when N windows of that size do not fit in an image, use the
            largest size that does instead of raising a ``ValueError``.
        grid_divisor: the pixel multiple the *test-time* data preprocessor pads a whole
            image to, when it pads beyond the patch size (mmdet's ``pad_size_divisor``,
            e.g. 32; mmseg's ``test_cfg=dict(size_divisor=...)``); default ``None``: the
            patch size (mmseg's whole-image test with no ``test_cfg`` padding, where the
            patch embedding pads to whole patches). It sets ``winwin_grid`` (below).
        mode: ``'windows'`` (Win-Win) or ``'random_tokens'`` (ablation: the same number
            of tokens, ``N * side^2``, drawn uniformly at random over the image).
        seed: seed of the window stream (default: the run's seed, i.e. mmengine's
            ``randomness.seed``, read from ``torch.initial_seed()`` when the transform is
            built). Windows come from a private generator seeded from this seed, the
            distributed rank and the dataloader worker id
            (:func:`~mmwinwin.layers.winwin.windows.window_stream_seed`), so the stream is
            reproducible and no two ranks or workers draw the same windows. It does not
            touch the global RNGs; on ``--resume`` mmengine replays the data pipeline up to
            the resumed iteration, which replays this stream exactly.
        same_class_pairs: detection pipelines: the probability (default 0, the paper's
            uniform placement) that an image's first window is placed over two objects of
            one class: a pair of ``gt_bboxes`` with the same ``gt_bboxes_labels`` (ignored
            boxes left out) whose tokens fit in one window is drawn uniformly, and the window
            uniformly among the positions that hold both and leave room for the others; the
            other windows are drawn as usual. An image with no such pair (or only pairs
            reaching into the last partial patch row or column, which no window covers) gets
            the usual windows. Uniform windows
            rarely hold two objects of one class, which the heads must learn to separate at
            test time (docs/winwin.md, "Mask2Former's gap"). A design option of this
            project; fixed window sizes only.
        progressive_sizes: window sides that change over training, one per stage, in place
            of ``window_size``: growing, e.g. ``(4, 5, 6, 7, 8)`` (progressive resizing), or
            shrinking, ``(8, 7, 6, 5, 4)``. One set of ``num_windows`` windows is drawn for
            every side (each as ``window_size=side`` would draw it) and recorded as
            ``winwin_window_stages``; the Win-Win segmentor or depth estimator splits the
            windows part of its run (up to ``full_image_phase``'s begin, or ``max_iters``)
            into ``len(progressive_sizes)`` equal stages and trains stage ``k`` on the windows
            of side ``progressive_sizes[k]``. Sides ``w - 2 .. w + 2`` average about a
            ``w x w`` window's tokens (``4 .. 8``: 38 against 36). A design option of this
            project (the paper keeps one size; docs/winwin.md, variants (y) and (z)); whole
            images packed (``pixels='image'``), segmentors and depth estimators only.

    Adds to ``results``: ``winwin_windows`` (list of ``(top, left, h, w)`` tokens) or
    ``winwin_token_index`` (list of token indices, row-major in ``winwin_grid``) or, with
    ``progressive_sizes``, ``winwin_window_stages`` (one such list per side),
    ``winwin_grid`` and ``winwin_patch_size``.

    ``winwin_grid`` is the full token grid the backbone's RoPE is given with the windows'
    tokens: the grid this image would have in the whole-image test forward,
    ``ceil(H / d) * d / p`` per axis (``d = grid_divisor or patch_size``,
    :func:`~mmwinwin.layers.winwin.windows.rope_grid_size`). It is per image, so it does
    not depend on how a training batch is padded (to the largest image, or to a fixed
    ``size``), and the window path (whole images packed) and the canvas path
    (``pixels='windows'``) use the same one. Grid-normalised RoPE families (DINOv3; EVA-02
    and PE with ``rope_ref_grid``) then give a token the coordinates it has at test time
    (batch size 1, the test image as large as this one); integer-coordinate families do not
    use the grid. Windows are still sampled on whole patches inside the image,
    ``(H // p, W // p)``.
    """

    def __init__(self, num_windows: int = 2, window_size: int | Sequence[int] | None = None,
                 token_budget: int | None = None, patch_size: int | None = None,
                 shrink_to_fit: bool = False, mode: str = 'windows',
                 seed: int | None = None, grid_divisor: int | None = None,
                 same_class_pairs: float = 0.0,
                 progressive_sizes: Sequence[int] | None = None) -> None:
        progressive_sizes = _check_progressive_sizes(progressive_sizes, window_size,
                                                     token_budget, mode, same_class_pairs)
        if mode not in ('windows', 'random_tokens'):
            raise ValueError(f"WinWinWindows mode must be 'windows' or 'random_tokens', got {mode!r}.")
        if window_size is None and token_budget is None and progressive_sizes is None:
            raise ValueError('WinWinWindows needs window_size (tokens per side, e.g. 22) or '
                             'token_budget (total tokens, e.g. 968).')
        check_window_args(num_windows, window_size, token_budget)
        if patch_size is None:
            raise ValueError(
                "WinWinWindows needs patch_size, the backbone's patch size in pixels: windows "
                "are sampled on the backbone's token grid. Give it in the config, e.g. "
                "dict(type='WinWinWindows', num_windows=2, window_size=12, patch_size=16) "
                '(14 for EVA-02 and the /14 PE presets).')
        check_int('patch_size', patch_size)
        if grid_divisor is not None:
            check_int('grid_divisor', grid_divisor)
            rope_grid_size((1, 1), patch_size, grid_divisor)  # a multiple of the patch size
        if isinstance(same_class_pairs, bool) or not isinstance(same_class_pairs, (int, float)) \
                or not 0 <= same_class_pairs <= 1:
            raise ValueError(f'WinWinWindows same_class_pairs is a probability in [0, 1] (how '
                             f'often the first window is placed over two objects of one '
                             f'class, e.g. 0.5); got {same_class_pairs!r}.')
        if same_class_pairs and (mode != 'windows' or not isinstance(window_size, int)):
            raise ValueError('WinWinWindows same_class_pairs places windows of one fixed size: '
                             "use mode='windows' and an int window_size (got mode="
                             f'{mode!r}, window_size={window_size!r}), or same_class_pairs=0.')
        self.same_class_pairs = float(same_class_pairs)
        self.progressive_sizes = progressive_sizes
        self.grid_divisor = grid_divisor
        self.num_windows = num_windows
        self.window_size = tuple(window_size) if isinstance(window_size, list) else window_size
        self.token_budget = token_budget
        self.patch_size = patch_size
        self.shrink_to_fit = shrink_to_fit
        self.mode = mode
        self.seed = seed
        # The run seed: mmengine's set_random_seed seeds torch with it before the datasets
        # (and so this transform) are built; the rank is known then too.
        self.base_seed = int(seed) if seed is not None else torch.initial_seed()
        self.rank = get_rank()
        self._worker = None  # which process the generator is for (None: main process)
        self.generator = window_stream_generator(self.base_seed, self.rank, None)

    def _stream(self) -> torch.Generator:
        """This process's generator: a dataloader worker (a forked copy of the transform)
        re-seeds it once from its worker id, so workers do not repeat each other."""
        info = torch.utils.data.get_worker_info()
        worker = None if info is None else info.id
        if worker != self._worker:
            self._worker = worker
            self.generator = window_stream_generator(self.base_seed, self.rank, worker)
        return self.generator

    def transform(self, results: dict) -> dict:
        image = results.get('img', results.get('img1'))  # an image, or frame 1 of a pair
        if image is None:
            raise KeyError("WinWinWindows needs results['img'] (or results['img1'] for a flow "
                           'pair); put it after the loading and the geometric augmentations.')
        img_hw = image.shape[:2]
        grid = sample_grid_size(img_hw, self.patch_size)
        generator = self._stream()
        try:
            if self.progressive_sizes is not None:
                stages = [sample_windows(grid, self.num_windows, side, None,
                                         self.shrink_to_fit, generator)
                          for side in self.progressive_sizes]
            else:
                windows = self._pair_windows(results, grid, generator) \
                    if self.same_class_pairs else None
                if windows is None:
                    windows = sample_windows(grid, self.num_windows, self.window_size,
                                             self.token_budget, self.shrink_to_fit, generator)
        except ValueError as err:
            # an image sample names img_path, a flow pair img1_path (frame 1)
            name = results.get('img_path') or results.get('img1_path')
            what = f'image {name}' if name else 'an image'
            raise ValueError(f'WinWinWindows on {what} of {img_hw[0]}x{img_hw[1]} px '
                             f'(patch {self.patch_size}): {err}') from err
        full = rope_grid_size(img_hw, self.patch_size, self.grid_divisor)
        results['winwin_grid'] = tuple(full)
        results['winwin_patch_size'] = self.patch_size
        if self.progressive_sizes is not None:
            results['winwin_window_stages'] = stages
        elif self.mode == 'windows':
            results['winwin_windows'] = windows
        else:
            budget = sum(h * w for _, _, h, w in windows)
            idx = sample_random_tokens(grid, budget, generator)
            # drawn in the sampling grid, recorded row-major in the full grid
            results['winwin_token_index'] = ((idx // grid[1]) * full[1] + idx % grid[1]).tolist()
        return results

    def _pair_windows(self, results: dict, grid: tuple[int, int],
                      generator: torch.Generator) -> list | None:
        """With probability ``same_class_pairs``, windows whose first holds a same-class
        pair of the image's boxes; ``None`` (draw the usual windows) otherwise."""
        if 'gt_bboxes' not in results or 'gt_bboxes_labels' not in results:
            raise KeyError('WinWinWindows(same_class_pairs=...) places a window over two boxes '
                           'of one class: it needs results[\'gt_bboxes\'] and '
                           "results['gt_bboxes_labels']; put it after LoadAnnotations("
                           'with_bbox=True) and the geometric augmentations.')
        if float(torch.rand((), generator=generator)) >= self.same_class_pairs:
            return None
        boxes = results['gt_bboxes']
        boxes = np.asarray(boxes.tensor if hasattr(boxes, 'tensor') else boxes,
                           dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(results['gt_bboxes_labels']).reshape(-1)
        keep = ~np.asarray(results.get('gt_ignore_flags', np.zeros(len(labels), bool)),
                           dtype=bool).reshape(-1)
        pairs = same_class_pair_windows(boxes[keep], labels[keep], grid, self.patch_size,
                                        self.window_size)
        if not pairs:
            return None
        pick = pairs[int(torch.randint(len(pairs), (), generator=generator))]
        return windows_holding(pick, grid, self.num_windows, self.window_size, generator)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_windows={self.num_windows}, window_size='
                f'{self.window_size}, token_budget={self.token_budget}, patch_size='
                f'{self.patch_size}, shrink_to_fit={self.shrink_to_fit}, mode={self.mode!r}, '
                f'grid_divisor={self.grid_divisor}, same_class_pairs={self.same_class_pairs}, '
                f'progressive_sizes={self.progressive_sizes})')


def _check_progressive_sizes(sizes, window_size, token_budget, mode: str,
                             same_class_pairs) -> tuple[int, ...] | None:
    """``progressive_sizes`` as a tuple of ints (or None); an error naming the clash with the
    options that set one window size or another placement."""
    if sizes is None:
        return None
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f'WinWinWindows progressive_sizes is a sequence of at least two window '
                         f'sides in tokens, one per stage of training, e.g. (4, 5, 6, 7, 8); '
                         f'got {sizes!r}. For one size use window_size.')
    for side in sizes:
        check_int('progressive_sizes (each side)', side)
    if window_size is not None or token_budget is not None:
        raise ValueError(f'WinWinWindows progressive_sizes={tuple(sizes)} sets the window side '
                         f'of every stage; drop window_size={window_size!r} / token_budget='
                         f'{token_budget!r}, or drop progressive_sizes for one size throughout.')
    if mode != 'windows' or same_class_pairs:
        raise ValueError(f'WinWinWindows progressive_sizes draws uniform windows '
                         f"(mode='windows', same_class_pairs=0); got mode={mode!r}, "
                         f'same_class_pairs={same_class_pairs!r}. Drop progressive_sizes or '
                         f'the other option.')
    return tuple(int(side) for side in sizes)
