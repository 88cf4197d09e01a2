"""Win-Win's window core: sample a few square token windows, gather their tokens.

Win-Win (Leroy et al., ICLR 2024) trains a ViT at high resolution on the tokens of
N random, square, non-overlapping windows only (N = 2 by default); every kept token
carries its true (y, x) position in the full image, so a RoPE ViT sees all absolute
positions and all offsets in training and is tested on the whole image in one pass.
Each window is also a small dense grid of its own, so an unchanged convolutional
decode head works on it, with the label map cropped to the same window.

Conventions (used by every function here):

* A *window* is a tuple ``(top, left, height, width)`` in **tokens** (patch units) of
  the image's token grid; ``height == width`` for Win-Win windows. Windows are kept
  as plain ``list[tuple[int, int, int, int]]`` so they travel in an mmengine
  sample's metainfo unchanged.
* The *token grid* of an image of ``H x W`` pixels with patch size ``p`` is
  ``(H // p, W // p)`` for sampling (:func:`sample_grid_size`), so every window lies
  fully inside the real image pixels. The grid the backbone's RoPE is given (the *full
  grid*, which DINOv3 normalises by and EVA-02 / PE with ``rope_ref_grid`` rescale by) is
  the one the whole image has at test time: ``(ceil(H / d) * d / p, ...)`` with ``d`` the
  pixel multiple the test-time data preprocessor pads to (the patch size by default,
  :func:`rope_grid_size`). Padding is right/bottom, so integer token indices are the same
  in every grid; only grid-normalised coordinates need the one full grid.
* Token indices are row-major in the full grid (``y * grid_w + x``), windows
  concatenated in order, row-major inside each window.

API:

* :func:`resolve_window_size` -- window side from ``window_size`` (int, or a
  ``(min, max)`` range sampled per draw) or a ``token_budget`` (side =
  ``floor(sqrt(budget / N))``).
* :func:`max_fitting_size` -- largest side for which N windows fit in a grid.
* :func:`sample_windows` -- N windows, uniform over all valid (non-overlapping)
  placements; a clear ``ValueError`` when they cannot fit, or ``shrink_to_fit``.
* :func:`sample_random_tokens` -- the "random tokens, same budget" ablation.
* :func:`window_stream_generator` -- a private generator whose stream is reproducible
  from a run seed and independent per rank and per dataloader worker.
* :func:`embed_windows` -- patch-embed only the windows' pixels of a batch (equal to
  gathering those tokens from the whole image's embedding) with their positions; the
  pixels come from the whole image or from a *canvas* that holds only the windows.
* :func:`canvas_layout` -- where each window's pixel block sits in such a canvas.
* :func:`window_token_index`, :func:`window_positions`, :func:`window_token_mask`,
  :func:`gather_tokens`, :func:`scatter_tokens`, :func:`window_grids`,
  :func:`window_pixel_boxes`, :func:`crop_windows`, :func:`crop_image_windows`.

Sampling is bounded: N candidate placements are drawn independently and uniformly
and a draw is kept when no two overlap (exactly uniform over valid configurations),
in a fixed number of vectorised batches; for near-tight fits where that would be
slow, windows fall on a randomly chosen set of cells of a packing grid with random
offsets (always valid, still random). There is never an unbounded retry loop.
"""
from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch

__all__ = ['Window', 'resolve_window_size', 'max_fitting_size', 'windows_fit',
           'sample_grid_size', 'rope_grid_size', 'sample_windows', 'sample_random_tokens',
           'same_class_pair_windows', 'windows_holding',
           'window_token_index',
           'window_positions', 'window_token_mask', 'gather_tokens', 'scatter_tokens',
           'window_grids', 'window_pixel_boxes', 'crop_windows', 'crop_image_windows',
           'check_windows', 'check_patch_size', 'check_int', 'check_window_args',
           'embed_windows', 'canvas_layout', 'CANVAS_META_KEY', 'window_stream_seed', 'window_stream_generator']

Window = tuple[int, int, int, int]  # (top, left, height, width) in tokens

_REJECTION_BATCH = 256
_REJECTION_ROUNDS = 8


def _randint(low: int, high: int, generator: torch.Generator | None, size=()) -> torch.Tensor:
    """Integers uniform in [low, high] (inclusive)."""
    return torch.randint(low, high + 1, size, generator=generator)


def window_stream_seed(seed: int, rank: int = 0, worker: int | None = None) -> int:
    """A 63-bit seed for the window stream of one (rank, dataloader worker) of a run.

    Distinct ``(seed, rank, worker)`` give unrelated streams (a hash, not ``seed + k``,
    so ``seed=0, rank=1`` and ``seed=1, rank=0`` do not coincide); the same triple always
    gives the same stream. ``worker=None`` is the main process (``num_workers=0``).
    """
    key = f'winwin-windows/{int(seed)}/{int(rank)}/{-1 if worker is None else int(worker)}'
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'little') >> 1


def window_stream_generator(seed: int, rank: int = 0,
                            worker: int | None = None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`window_stream_seed`."""
    return torch.Generator().manual_seed(window_stream_seed(seed, rank, worker))


def sample_grid_size(img_hw: Sequence[int], patch_size: int) -> tuple[int, int]:
    """Token grid in which windows are sampled: whole patches inside the image."""
    h, w = int(img_hw[0]) // patch_size, int(img_hw[1]) // patch_size
    return h, w


def rope_grid_size(img_hw: Sequence[int], patch_size: int,
                   divisor: int | None = None) -> tuple[int, int]:
    """The full token grid of an ``H x W`` image as the whole-image test path gives it to the
    backbone: the image zero-padded (right, bottom) to a multiple of ``divisor`` pixels
    (default ``patch_size``; mmseg's ``test_cfg.size_divisor`` / mmdet's ``pad_size_divisor``
    when those pad further), then cut into patches: ``ceil(H / d) * d / p`` per axis.

    Training on windows hands this grid to the backbone with the windows' tokens, so a token
    gets the same RoPE coordinates in training as in the test's whole-image forward for the
    grid-normalised families (DINOv3, EVA-02, PE with ``rope_ref_grid``)."""
    p = int(patch_size)
    d = p if divisor is None else int(divisor)
    if d % p:
        raise ValueError(f'The grid divisor ({d} px) must be a multiple of the patch size '
                         f'({p} px): the test-time padding is whole patches.')
    return tuple(-(-int(v) // d) * d // p for v in img_hw[:2])


def windows_fit(grid_size: Sequence[int], num_windows: int, size: int) -> bool:
    """Whether ``num_windows`` non-overlapping ``size x size`` windows fit in the grid.

    Axis-parallel equal squares fit exactly when ``floor(H/s) * floor(W/s) >= N``.
    """
    if size < 1:
        return False
    gh, gw = grid_size
    return (gh // size) * (gw // size) >= num_windows


def max_fitting_size(grid_size: Sequence[int], num_windows: int) -> int:
    """Largest window side for which ``num_windows`` windows fit (0 if none does)."""
    best = 0
    for s in range(1, min(grid_size) + 1):
        if windows_fit(grid_size, num_windows, s):
            best = s
    return best


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; a bool (``True`` would count as 1), a float or a
    string is a ``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'{name} must be an int, got {value!r} ({type(value).__name__}); '
                        'write the number itself (a bool would silently count as 0 or 1).')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}.')
    return value


def check_window_args(num_windows, window_size=None, token_budget=None) -> None:
    """Validate the Win-Win window settings once (at construction): ints, not bools."""
    check_int('num_windows', num_windows)
    if isinstance(window_size, (list, tuple)):
        if len(window_size) != 2:
            raise ValueError(f'window_size must be an int or a (min, max) pair, got '
                             f'{window_size!r}.')
        for v in window_size:
            check_int('window_size (each of min, max)', v)
    elif window_size is not None:
        check_int('window_size', window_size)
    if token_budget is not None:
        check_int('token_budget', token_budget)


def resolve_window_size(window_size: int | Sequence[int] | None = None,
                        token_budget: int | None = None, num_windows: int = 2,
                        generator: torch.Generator | None = None) -> int:
    """Window side in tokens.

    Exactly one of ``window_size`` (an int, or a ``(min, max)`` range sampled
    uniformly, inclusive) and ``token_budget`` (total kept tokens; side =
    ``floor(sqrt(budget / num_windows))``) must be given.
    """
    check_window_args(num_windows, window_size, token_budget)
    if (window_size is None) == (token_budget is None):
        raise ValueError('Give exactly one of window_size (tokens per side, or a (min, max) '
                         f'range) and token_budget (total tokens); got window_size={window_size}, '
                         f'token_budget={token_budget}.')
    if token_budget is not None:
        side = math.isqrt(int(token_budget) // num_windows)
        if side < 1:
            raise ValueError(f'token_budget={token_budget} is too small for {num_windows} windows '
                             f'(needs at least {num_windows} tokens).')
        return side
    if isinstance(window_size, int):
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1 token, got {window_size}.')
        return window_size
    if isinstance(window_size, (list, tuple)) and len(window_size) == 2:
        lo, hi = int(window_size[0]), int(window_size[1])
        if not 1 <= lo <= hi:
            raise ValueError(f'window_size range must satisfy 1 <= min <= max, got {window_size}.')
        return int(_randint(lo, hi, generator))
    raise ValueError(f'window_size must be an int or a (min, max) pair, got {window_size!r}.')


def _rejection_sample(gh: int, gw: int, n: int, s: int,
                      generator: torch.Generator | None,
                      first: tuple[int, int] | None = None) -> list[Window] | None:
    """n random non-overlapping windows (``first``: the first one's fixed top-left)."""
    for _ in range(_REJECTION_ROUNDS):
        tops = _randint(0, gh - s, generator, (_REJECTION_BATCH, n))
        lefts = _randint(0, gw - s, generator, (_REJECTION_BATCH, n))
        if first is not None:
            tops[:, 0], lefts[:, 0] = first
        dy = (tops[:, :, None] - tops[:, None, :]).abs()
        dx = (lefts[:, :, None] - lefts[:, None, :]).abs()
        overlap = (dy < s) & (dx < s)
        overlap &= ~torch.eye(n, dtype=torch.bool)
        ok = ~overlap.flatten(1).any(1)
        if ok.any():
            k = int(ok.nonzero()[0])
            return [(int(tops[k, i]), int(lefts[k, i]), s, s) for i in range(n)]
    return None


def _packed_sample(gh: int, gw: int, n: int, s: int,
                   generator: torch.Generator | None) -> list[Window]:
    """Always-valid fallback: n random cells of a (gh//s) x (gw//s) packing grid; the
    spare rows/columns are spread randomly between the grid lines."""
    rows, cols = gh // s, gw // s

    def offsets(count: int, spare: int) -> list[int]:
        # random non-decreasing gaps summing to <= spare before each of `count` cells
        cuts = sorted(int(v) for v in _randint(0, spare, generator, (count,)))
        return [i * s + cuts[i] for i in range(count)]

    ys, xs = offsets(rows, gh - rows * s), offsets(cols, gw - cols * s)
    cells = torch.randperm(rows * cols, generator=generator)[:n].tolist()
    return [(ys[c // cols], xs[c % cols], s, s) for c in cells]


def sample_windows(grid_size: Sequence[int], num_windows: int = 2,
                   window_size: int | Sequence[int] | None = None,
                   token_budget: int | None = None, shrink_to_fit: bool = False,
                   generator: torch.Generator | None = None) -> list[Window]:
    """Sample ``num_windows`` square, non-overlapping windows in a token grid.

    Args:
        grid_size: ``(H, W)`` of the token grid (see :func:`sample_grid_size`).
        num_windows: N (2 in the paper).
        window_size: side in tokens, or a ``(min, max)`` range sampled per call.
        token_budget: alternatively, total kept tokens (side derived).
        shrink_to_fit: when the windows do not fit, use the largest side that does
            instead of raising.
        generator: a seeded ``torch.Generator`` for reproducible draws.

    Returns:
        ``[(top, left, size, size), ...]`` in tokens.
    """
    gh, gw = int(grid_size[0]), int(grid_size[1])
    s = resolve_window_size(window_size, token_budget, num_windows, generator)
    if not windows_fit((gh, gw), num_windows, s):
        fit = max_fitting_size((gh, gw), num_windows)
        if shrink_to_fit and fit >= 1:
            s = fit
        else:
            hint = (f'the largest side that fits is {fit} tokens' if fit else
                    f'not even 1x1 windows fit ({gh * gw} tokens)')
            raise ValueError(
                f'{num_windows} non-overlapping windows of {s}x{s} tokens do not fit in a '
                f'{gh}x{gw} token grid ({hint}). Use a smaller window_size '
                f'/ token_budget, fewer windows, larger images, or shrink_to_fit=True.')
    windows = _rejection_sample(gh, gw, num_windows, s, generator)
    if windows is None:
        windows = _packed_sample(gh, gw, num_windows, s, generator)
    return windows


def same_class_pair_windows(boxes, labels, grid_size: Sequence[int], patch_size: int,
                            size: int) -> list[Window]:
    """The token boxes ``(top, left, h, w)`` of every pair of same-label pixel boxes
    ``(x0, y0, x1, y1)`` whose patches fit together in a ``size`` x ``size`` window, in the
    order of the pairs ``(i, j)``, ``i < j``. A box covers every patch it overlaps; a box that
    reaches past the grid (into pixels no window covers) is in no pair."""
    b = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    lab = torch.as_tensor(labels).reshape(-1)
    top = torch.floor(b[:, 1] / patch_size).clamp(min=0)
    left = torch.floor(b[:, 0] / patch_size).clamp(min=0)
    bottom = torch.maximum(top + 1, torch.ceil(b[:, 3] / patch_size))
    right = torch.maximum(left + 1, torch.ceil(b[:, 2] / patch_size))
    inside = (bottom <= int(grid_size[0])) & (right <= int(grid_size[1]))
    i, j = torch.triu_indices(len(b), len(b), 1)
    t, l = torch.minimum(top[i], top[j]), torch.minimum(left[i], left[j])
    h = torch.maximum(bottom[i], bottom[j]) - t
    w = torch.maximum(right[i], right[j]) - l
    ok = inside[i] & inside[j] & (lab[i] == lab[j]) & (h <= size) & (w <= size)
    return [tuple(int(v) for v in row) for row in torch.stack([t, l, h, w], 1)[ok].tolist()]


def windows_holding(box: Window, grid_size: Sequence[int], num_windows: int, size: int,
                    generator: torch.Generator | None = None) -> list[Window] | None:
    """``num_windows`` non-overlapping ``size`` x ``size`` windows, the first one holding
    ``box`` (``(top, left, h, w)`` tokens) at a position drawn uniformly among those that
    hold it and leave room for the others, the others drawn as :func:`sample_windows` draws
    them; ``None`` when the box does not fit in a window or no room is found for the
    others."""
    gh, gw = int(grid_size[0]), int(grid_size[1])
    top, left, h, w = box
    lo_t, hi_t = max(0, top + h - size), min(top, gh - size)
    lo_l, hi_l = max(0, left + w - size), min(left, gw - size)
    if lo_t > hi_t or lo_l > hi_l:  # larger than a window, or past the grid
        return None
    cols = hi_l - lo_l + 1
    places = [(lo_t + i // cols, lo_l + i % cols) for i in torch.randperm(
        (hi_t - lo_t + 1) * cols, generator=generator).tolist()]
    if num_windows == 2:  # room for a second window: beside the first on some side
        places = [(t, l) for t, l in places if t >= size or t + 2 * size <= gh
                  or l >= size or l + 2 * size <= gw]
    for first in places[:_REJECTION_ROUNDS]:
        if num_windows == 1:
            return [(*first, size, size)]
        windows = _rejection_sample(gh, gw, num_windows, size, generator, first)
        if windows is not None:
            return windows
    return None


def sample_random_tokens(grid_size: Sequence[int], num_tokens: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The ablation "random tokens, same budget" (random token dropping, as PatchDropout /
    FLIP): ``num_tokens`` distinct token indices drawn uniformly from the grid, sorted
    (row-major). The selection rule is timm's ``PatchDropout`` (``ordered=True``): one
    standard normal draw per token, the tokens of the ``num_tokens`` smallest draws kept."""
    total = int(grid_size[0]) * int(grid_size[1])
    if not 1 <= num_tokens <= total:
        raise ValueError(f'Cannot keep {num_tokens} random tokens of a {grid_size[0]}x'
                         f'{grid_size[1]} grid ({total} tokens); choose 1..{total}.')
    draws = torch.randn(1, total, generator=generator)
    return torch.argsort(draws, dim=-1)[0, :num_tokens].sort().values


def check_windows(windows: Sequence[Sequence[int]], grid_size: Sequence[int]) -> None:
    """Raise a clear ``ValueError`` if a window leaves the grid or windows overlap."""
    gh, gw = int(grid_size[0]), int(grid_size[1])
    for i, (t, l, h, w) in enumerate(windows):
        if h < 1 or w < 1 or t < 0 or l < 0 or t + h > gh or l + w > gw:
            raise ValueError(f'Window {i} = (top={t}, left={l}, h={h}, w={w}) tokens lies outside '
                             f'the {gh}x{gw} token grid. Were the windows sampled before a resize '
                             'or crop? Put the window transform after geometric augmentations.')
    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            a, b = windows[i], windows[j]
            if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and \
                    b[1] < a[1] + a[3]:
                raise ValueError(f'Windows {i} {tuple(a)} and {j} {tuple(b)} overlap.')


def check_patch_size(recorded: int | None, patch_size: int, where: str = '') -> None:
    """Raise a clear ``ValueError`` when the patch size a window transform recorded
    (``winwin_patch_size``) is not the backbone's: the windows are then in the wrong
    token units (too small a grid, windows out of place or out of range)."""
    if recorded is None or int(recorded) == int(patch_size):
        return
    at = f' ({where})' if where else ''
    raise ValueError(
        f'The Win-Win windows were sampled with patch_size={int(recorded)} but the backbone '
        f'has patch size {int(patch_size)}{at}: window coordinates are in tokens of the '
        f"transform's patch size, so they would cover the wrong pixels. Set the window "
        f"transform's patch_size to the backbone's: dict(type='WinWinWindows', ..., "
        f'patch_size={int(patch_size)}).')


def window_token_index(windows: Sequence[Sequence[int]], grid_size: Sequence[int],
                       device: torch.device | None = None) -> torch.Tensor:
    """Row-major indices (into the full ``grid_size`` grid) of the windows' tokens,
    windows concatenated in order. Returns a ``(K,)`` long tensor."""
    gw = int(grid_size[1])
    out = []
    for t, l, h, w in windows:
        ys = torch.arange(t, t + h, device=device)
        xs = torch.arange(l, l + w, device=device)
        out.append((ys[:, None] * gw + xs[None, :]).reshape(-1))
    return torch.cat(out)


def window_positions(windows: Sequence[Sequence[int]], device: torch.device | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(y, x) positions in the full grid of the windows' tokens, ``(K, 2)``, in the
    order of :func:`window_token_index`."""
    out = []
    for t, l, h, w in windows:
        ys = torch.arange(t, t + h, device=device, dtype=dtype)
        xs = torch.arange(l, l + w, device=device, dtype=dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        out.append(torch.stack([yy.reshape(-1), xx.reshape(-1)], -1))
    return torch.cat(out)


def window_token_mask(windows: Sequence[Sequence[int]], grid_size: Sequence[int],
                      device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(H, W)`` grid, True on the windows' tokens."""
    mask = torch.zeros(int(grid_size[0]), int(grid_size[1]), dtype=torch.bool, device=device)
    for t, l, h, w in windows:
        mask[t:t + h, l:l + w] = True
    return mask


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tokens[b, index[b]]``: (B, N, C) and (K,) or (B, K) indices -> (B, K, C)."""
    if index.dim() == 1:
        return tokens[:, index.to(tokens.device)]
    if index.shape[0] != tokens.shape[0]:
        raise ValueError(f'index has batch {index.shape[0]} but tokens have {tokens.shape[0]}.')
    idx = index.to(tokens.device)[..., None].expand(-1, -1, tokens.shape[-1])
    return tokens.gather(1, idx)


def scatter_tokens(tokens: torch.Tensor, index: torch.Tensor, num_total: int,
                   fill: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`gather_tokens`: (B, K, C) -> (B, num_total, C), ``fill`` elsewhere."""
    B, _, C = tokens.shape
    out = tokens.new_full((B, num_total, C), fill)
    idx = index.to(tokens.device)
    if idx.dim() == 1:
        idx = idx[None].expand(B, -1)
    return out.scatter(1, idx[..., None].expand(-1, -1, C), tokens)


def window_grids(tokens: torch.Tensor, windows: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """Split (B, K, C) window tokens (order of :func:`window_token_index`) into one
    ``(B, C, h, w)`` grid per window."""
    sizes = [int(h) * int(w) for _, _, h, w in windows]
    if sum(sizes) != tokens.shape[1]:
        raise ValueError(f'{tokens.shape[1]} tokens do not match windows {list(windows)} '
                         f'({sum(sizes)} tokens).')
    out = []
    for chunk, (_, _, h, w) in zip(tokens.split(sizes, dim=1), windows):
        out.append(chunk.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w))
    return out


def window_pixel_boxes(windows: Sequence[Sequence[int]], patch_size: int) -> list[Window]:
    """Windows in pixels: ``(top, left, height, width)`` times the patch size."""
    p = int(patch_size)
    return [(t * p, l * p, h * p, w * p) for t, l, h, w in windows]


def crop_windows(x: torch.Tensor, windows: Sequence[Sequence[int]],
                 patch_size: int) -> list[torch.Tensor]:
    """Crop a pixel-space map ``(..., H, W)`` (label, depth, image) to each window."""
    out = []
    for t, l, h, w in window_pixel_boxes(windows, patch_size):
        if t + h > x.shape[-2] or l + w > x.shape[-1]:
            raise ValueError(f'Window pixel box (top={t}, left={l}, h={h}, w={w}) exceeds the '
                             f'map of size {tuple(x.shape[-2:])}.')
        out.append(x[..., t:t + h, l:l + w])
    return out


def crop_image_windows(img: torch.Tensor, windows: Sequence[Sequence[int]],
                       patch_size: int) -> list[torch.Tensor]:
    """Alias of :func:`crop_windows` for images (B, C, H, W); patch-embedding each
    crop gives exactly the window tokens of the full image's patch embedding."""
    return crop_windows(img, windows, patch_size)


#: metainfo key of the windows' places in a canvas of their pixels (the packers'
#: ``pixels='windows'``), read by the models
CANVAS_META_KEY = 'winwin_canvas'


def canvas_layout(windows: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int]],
                                                             tuple[int, int]]:
    """Where each window sits in a *canvas*: a compact image holding only the windows'
    pixel blocks, side by side from left to right in the windows' order, top-aligned.

    Why: the pixels outside the windows are never embedded in Win-Win training, so a
    pipeline can pack this canvas instead of the whole image, and the data preprocessor
    normalises, pads and moves only the windows' pixels. Side by side wastes nothing for
    Win-Win's equal-size windows (the canvas area is the windows' area).

    Returns ``offsets`` (one ``(top, left)`` per window) and the canvas size
    ``(height, width)``, both in tokens; times the patch size they are pixels.
    """
    if not len(windows):
        raise ValueError('canvas_layout needs at least one window.')
    offsets, left = [], 0
    for _, _, h, w in windows:
        offsets.append((0, left))
        left += int(w)
    return offsets, (max(int(h) for _, _, h, _ in windows), left)


def embed_windows(patch_embed, img: torch.Tensor, batch_windows: Sequence[Sequence[Sequence[int]]],
                  patch_size: int, batch_offsets: Sequence[Sequence[Sequence[int]]] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch-embed only the windows of each image of a batch.

    Args:
        patch_embed: callable ``(B, C, h, w) -> ((B, h*w/p^2, D), grid)`` (e.g.
            :class:`mmwinwin.layers.PatchEmbed`).
        img: ``(B, C, H, W)`` images, or canvases holding only the windows' pixels.
        batch_windows: one window list per image; the list of window sizes must be the
            same for every image of the batch (group images by sizes otherwise).
        patch_size: pixels per token.
        batch_offsets: where each window's pixels lie in ``img``: per image, one
            ``(top, left)`` per window in tokens (a canvas, :func:`canvas_layout`).
            ``None``: ``img`` is the whole image, each window at its own ``(top, left)``.

    Returns:
        ``tokens (B, K, D)`` and their full-image positions ``pos (B, K, 2)`` (always the
        windows' own coordinates, wherever the pixels were read), in the order of
        :func:`window_token_index`.
    """
    if len(batch_windows) != img.shape[0]:
        raise ValueError(f'Got {len(batch_windows)} window lists for a batch of {img.shape[0]}.')
    sizes = [tuple((h, w) for _, _, h, w in wins) for wins in batch_windows]
    if any(sz != sizes[0] for sz in sizes):
        raise ValueError(f'embed_windows needs the same window sizes for every image of the '
                         f'batch, got {sizes}; embed the images in groups of equal sizes.')
    if batch_offsets is None:
        boxes = batch_windows
    else:
        if len(batch_offsets) != len(batch_windows) or any(
                len(o) != len(w) for o, w in zip(batch_offsets, batch_windows)):
            raise ValueError(f'batch_offsets must give one (top, left) per window of every '
                             f'image; got {list(batch_offsets)} for windows {list(batch_windows)}.')
        boxes = [[(int(o[0]), int(o[1]), h, w) for o, (_, _, h, w) in zip(offs, wins)]
                 for offs, wins in zip(batch_offsets, batch_windows)]
    chunks = []
    for j in range(len(batch_windows[0])):
        crops = torch.stack([crop_windows(img[b], [boxes[b][j]], patch_size)[0]
                             for b in range(img.shape[0])])
        chunks.append(patch_embed(crops)[0])
    pos = torch.stack([window_positions(w, device=img.device) for w in batch_windows])
    return torch.cat(chunks, dim=1), pos
