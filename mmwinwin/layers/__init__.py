"""Pure-PyTorch core of mmwinwin: importable with torch alone (no mmcv/mmseg/mmdet).

* ViT: ``rope`` (2D RoPE), ``vit`` (the ViT with explicit token positions),
  ``vit_checkpoint`` (key conversion), ``window_attention`` / ``windowed_vit`` (ViTDet-style).
* Flow: ``croco_flow`` (binocular ViT), ``croco_checkpoint`` (CroCo encoder+decoder weights),
  ``flow_windows`` (window pairing), ``flow_ops`` (warp, errors, loss), ``flow_tiling``.
* Win-Win: ``windows`` (sampling, gather, per-window grids, label crops).
* Expedite: ``clustering``, ``reconstruction``, ``local_neighbors``, ``expedite`` and,
  per attention window, ``window_clustering`` / ``expedite_windowed``.
"""
from .clustering import ClusterResult, cluster_tokens
from .croco_checkpoint import convert_croco_state_dict, load_croco_state_dict
from .expedite import ExpediteSettings, cluster_sequence, expedited_forward_tokens
from .expedite_windowed import expedited_windowed_forward
from .local_neighbors import LocalPlan, build_plan, candidate_index, resolve_cluster_grid
from .reconstruction import (ReconstructionWeights, reconstruct_map, reconstruct_tokens,
                             reconstruction_weights)
from .rope import RoPE2D, grid_positions
from .vit import ARCH_SETTINGS, Attention, Block, PatchEmbed, RoPEVisionTransformer, resolve_arch
from .vit_checkpoint import (CheckpointMismatchError, convert_vit_state_dict,
                             load_vit_state_dict, unwrap_state_dict)
from .window_attention import window_key_mask, window_partition, window_unpartition
from .window_clustering import (WindowClusters, cluster_grid_of_windows, cluster_windows,
                                reconstruct_windows, relative_position_index,
                                resize_relative_position_bias, windows_of_cluster_grid)
from .windowed_vit import WindowedVisionTransformer
from .windows import (Window, check_windows, crop_image_windows, crop_windows, embed_windows,
                      gather_tokens, max_fitting_size, resolve_window_size, sample_grid_size,
                      sample_random_tokens, sample_windows, scatter_tokens, window_grids,
                      window_pixel_boxes, window_positions, window_token_index,
                      window_token_mask, windows_fit)

__all__ = [
    # ViT
    'RoPE2D', 'grid_positions', 'ARCH_SETTINGS', 'Attention', 'Block', 'PatchEmbed',
    'RoPEVisionTransformer', 'resolve_arch', 'CheckpointMismatchError',
    'convert_vit_state_dict', 'load_vit_state_dict', 'unwrap_state_dict',
    'convert_croco_state_dict', 'load_croco_state_dict',
    'window_partition', 'window_unpartition', 'window_key_mask', 'WindowedVisionTransformer',
    # Win-Win
    'Window', 'check_windows', 'embed_windows', 'crop_image_windows', 'crop_windows',
    'gather_tokens', 'max_fitting_size', 'resolve_window_size', 'sample_grid_size',
    'sample_random_tokens', 'sample_windows', 'scatter_tokens', 'window_grids',
    'window_pixel_boxes', 'window_positions', 'window_token_index', 'window_token_mask',
    'windows_fit',
    # Expedite
    'ClusterResult', 'cluster_tokens', 'LocalPlan', 'build_plan', 'candidate_index',
    'resolve_cluster_grid', 'ReconstructionWeights', 'reconstruction_weights',
    'reconstruct_tokens', 'reconstruct_map', 'ExpediteSettings', 'cluster_sequence',
    'expedited_forward_tokens', 'WindowClusters', 'cluster_windows', 'reconstruct_windows',
    'cluster_grid_of_windows', 'windows_of_cluster_grid', 'relative_position_index',
    'resize_relative_position_bias', 'expedited_windowed_forward',
]
