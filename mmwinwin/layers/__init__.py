"""Pure-PyTorch core of mmwinwin: importable with torch alone (no mmcv/mmseg/mmdet)."""
from .rope import RoPE2D, grid_positions
from .vit import ARCH_SETTINGS, Attention, Block, PatchEmbed, RoPEVisionTransformer, resolve_arch
from .windows import (Window, check_windows, embed_windows, crop_image_windows, crop_windows, gather_tokens,
                      max_fitting_size, resolve_window_size, sample_grid_size,
                      sample_random_tokens, sample_windows, scatter_tokens, window_grids,
                      window_pixel_boxes, window_positions, window_token_index,
                      window_token_mask, windows_fit)
from .vit_checkpoint import (CheckpointMismatchError, convert_vit_state_dict,
                             load_vit_state_dict, unwrap_state_dict)

__all__ = ['RoPE2D', 'grid_positions', 'ARCH_SETTINGS', 'Attention', 'Block', 'PatchEmbed',
           'RoPEVisionTransformer', 'resolve_arch', 'CheckpointMismatchError',
           'convert_vit_state_dict', 'load_vit_state_dict', 'unwrap_state_dict',
           'Window', 'check_windows', 'embed_windows', 'crop_image_windows', 'crop_windows', 'gather_tokens',
           'max_fitting_size', 'resolve_window_size', 'sample_grid_size', 'sample_random_tokens',
           'sample_windows', 'scatter_tokens', 'window_grids', 'window_pixel_boxes',
           'window_positions', 'window_token_index', 'window_token_mask', 'windows_fit']
