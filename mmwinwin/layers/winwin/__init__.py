"""Win-Win: N random square windows of tokens per image (``windows``: sampling, token
indices and full-image positions, gather / scatter, per-window grids and label crops,
the canvas layout of the windows' pixels),
and the same windows for image pairs with a frame-2 margin (``pair_windows``);
optional pooled context tokens of the whole image (``context``)."""
from .context import ContextTokens, context_grid, pool_context_tokens
from .pair_windows import (check_batch_windows, crop_pair_windows, pair_window_tokens,
                           tokens_to_window_grids)
from .windows import (Window, canvas_layout, check_windows, crop_image_windows, crop_windows, embed_windows,
                      gather_tokens, max_fitting_size, resolve_window_size, rope_grid_size,
                      sample_grid_size, sample_random_tokens, sample_windows, scatter_tokens,
                      window_grids,
                      window_pixel_boxes, window_positions, window_token_index,
                      window_stream_generator, window_stream_seed, window_token_mask,
                      windows_fit)

__all__ = ['Window', 'canvas_layout', 'check_windows', 'embed_windows', 'crop_image_windows', 'crop_windows',
           'gather_tokens', 'max_fitting_size', 'resolve_window_size', 'rope_grid_size',
           'sample_grid_size',
           'sample_random_tokens', 'sample_windows', 'scatter_tokens', 'window_grids',
           'window_pixel_boxes', 'window_positions', 'window_token_index', 'window_token_mask',
           'windows_fit', 'check_batch_windows', 'pair_window_tokens', 'tokens_to_window_grids',
           'crop_pair_windows', 'window_stream_seed', 'window_stream_generator',
           'ContextTokens', 'context_grid', 'pool_context_tokens']
