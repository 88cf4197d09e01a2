"""``WinWinWindows``: the window-masking transform of Win-Win training.

Runs after the geometric augmentations (resize, crop, flip) of an mmseg or mmdet
pipeline, samples N square non-overlapping windows aligned to the patch grid over the
image (see :mod:`mmwinwin.layers.winwin.windows`) and records them in the results, so that
``PackSegInputs`` / ``PackDetInputs`` put them into the sample's metainfo when their
``meta_keys`` include :data:`WINWIN_META_KEYS`. The image itself is left whole: the
Win-Win segmentor embeds only the windows' pixels.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmcv.transforms import BaseTransform

from ...layers.winwin.windows import (check_int, check_window_args, sample_grid_size,
                                      sample_random_tokens, sample_windows)
from ...registry import register

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS']

#: metainfo keys written by WinWinWindows; WinWinPackSegInputs / WinWinPackDetInputs pack them
#: (or add them to PackSegInputs' / PackDetInputs' meta_keys).
WINWIN_META_KEYS = ('winwin_windows', 'winwin_token_index', 'winwin_grid', 'winwin_patch_size')


@register('TRANSFORMS')
class WinWinWindows(BaseTransform):
    """Sample Win-Win windows for one training image.

    Args:
        num_windows: N windows per image (2 in the paper).
        window_size: side in tokens, or a ``(min, max)`` range sampled per image.
        token_budget: alternatively, total kept tokens (side = floor(sqrt(budget / N))).
        patch_size: the backbone's patch size in pixels.
        shrink_to_fit: when N windows of that size do not fit in an image, use the
            largest size that does instead of raising a ``ValueError``.
        mode: ``'windows'`` (Win-Win) or ``'random_tokens'`` (ablation: the same number
            of tokens, ``N * side^2``, drawn uniformly at random over the image).
        seed: optional seed of a private generator (default: torch's global RNG, which
            mmengine seeds per run and per dataloader worker).

    Adds to ``results``: ``winwin_windows`` (list of ``(top, left, h, w)`` tokens) or
    ``winwin_token_index`` (list of row-major token indices), ``winwin_grid`` (token
    grid of whole patches inside the image) and ``winwin_patch_size``.
    """

    def __init__(self, num_windows: int = 2, window_size: int | Sequence[int] | None = None,
                 token_budget: int | None = None, patch_size: int = 16,
                 shrink_to_fit: bool = False, mode: str = 'windows',
                 seed: int | None = None) -> None:
        if mode not in ('windows', 'random_tokens'):
            raise ValueError(f"WinWinWindows mode must be 'windows' or 'random_tokens', got {mode!r}.")
        if window_size is None and token_budget is None:
            raise ValueError('WinWinWindows needs window_size (tokens per side, e.g. 22) or '
                             'token_budget (total tokens, e.g. 968).')
        check_int('patch_size', patch_size)
        check_window_args(num_windows, window_size, token_budget)
        self.num_windows = num_windows
        self.window_size = tuple(window_size) if isinstance(window_size, list) else window_size
        self.token_budget = token_budget
        self.patch_size = patch_size
        self.shrink_to_fit = shrink_to_fit
        self.mode = mode
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("WinWinWindows needs results['img']; put it after LoadImageFromFile "
                           'and the geometric augmentations.')
        img_hw = results['img'].shape[:2]
        grid = sample_grid_size(img_hw, self.patch_size)
        try:
            windows = sample_windows(grid, self.num_windows, self.window_size, self.token_budget,
                                     self.shrink_to_fit, self.generator)
        except ValueError as err:
            raise ValueError(f'WinWinWindows on image {results.get("img_path", "")} of '
                             f'{img_hw[0]}x{img_hw[1]} px (patch {self.patch_size}): {err}') from err
        results['winwin_grid'] = tuple(grid)
        results['winwin_patch_size'] = self.patch_size
        if self.mode == 'windows':
            results['winwin_windows'] = windows
        else:
            budget = sum(h * w for _, _, h, w in windows)
            results['winwin_token_index'] = sample_random_tokens(
                grid, budget, self.generator).tolist()
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_windows={self.num_windows}, window_size='
                f'{self.window_size}, token_budget={self.token_budget}, patch_size='
                f'{self.patch_size}, shrink_to_fit={self.shrink_to_fit}, mode={self.mode!r})')
