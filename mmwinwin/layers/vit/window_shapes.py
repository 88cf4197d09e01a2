"""How a sequence of patch tokens splits into Win-Win windows: a list of token grids.

Win-Win (Leroy et al., ICLR 2024) runs a ViT on the tokens of a few windows of the image
only. The tokens of window ``j`` form an ``(h_j, w_j)`` grid, row-major, and the windows
are concatenated in order (the order of ``layers.winwin.windows.window_token_index``).
A model whose blocks attend within local partitions (ViTDet) needs these grid shapes to
partition each window on its own; a plain ViT needs only that they account for every
token. Kept in ``layers/vit`` (torch-free and free of ``layers/winwin``) because the ViTs
check it.
"""
from __future__ import annotations

from numbers import Integral
from typing import Sequence

__all__ = ['check_window_shapes']


def check_window_shapes(window_shapes: Sequence[Sequence[int]],
                        num_tokens: int) -> list[tuple[int, int]]:
    """``window_shapes`` as a list of ``(h, w)`` int pairs whose areas sum to
    ``num_tokens``; a clear error otherwise.

    Raises:
        TypeError: an entry is not a pair, or a side is not an int (a bool or a float is
            refused: ``2.0`` or ``True`` would hide a unit mix-up).
        ValueError: a side is < 1, the list is empty, or the areas do not sum to
            ``num_tokens``.
    """
    if isinstance(window_shapes, (str, bytes)) or not isinstance(window_shapes, Sequence):
        raise TypeError(f'window_shapes must be a list of (h, w) token grids, one per Win-Win '
                        f'window, got {window_shapes!r}.')
    if len(window_shapes) == 0:
        raise ValueError('window_shapes is empty: give one (h, w) token grid per Win-Win '
                         'window, or window_shapes=None for a whole-image grid.')
    out = []
    for j, shape in enumerate(window_shapes):
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 2:
            raise TypeError(f'window_shapes[{j}] = {shape!r} is not an (h, w) pair of token '
                            'counts; give one (h, w) pair per window, e.g. [(14, 14), (14, 14)].')
        for side in shape:
            if isinstance(side, bool) or not isinstance(side, Integral):
                raise TypeError(f'window_shapes[{j}] = {tuple(shape)!r} has a side that is not an '
                                f'int ({type(side).__name__}); window shapes are counted in '
                                'tokens: write whole numbers, e.g. (14, 14).')
            if side < 1:
                raise ValueError(f'window_shapes[{j}] = {tuple(shape)!r} has a side < 1 token.')
        out.append((int(shape[0]), int(shape[1])))
    total = sum(h * w for h, w in out)
    if total != num_tokens:
        raise ValueError(f'window_shapes {out} hold {total} tokens but {num_tokens} patch tokens '
                         'were given; the windows must account for every token, in order '
                         '(window_token_index order; context tokens, if any, as one more grid).')
    return out
