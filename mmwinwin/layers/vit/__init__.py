"""The plain ViT and its positions: 2D RoPE (``rope``), the ViT whose forward takes
explicit token positions (``vision_transformer``), the one block loop and its token-policy
seam (``block_loop``), the RoPE conventions and presets of
pretrained families such as DINOv3 (``rope_families``), attention partitions and the
ViTDet-style ViT built on them (``partition``, ``vitdet``), how tokens split into Win-Win
windows (``window_shapes``), and checkpoint key
conversion and safe file loading (``checkpoint``)."""
from .block_loop import BlockLoopState, TokenPolicy, run_blocks
from .checkpoint import (CheckpointMismatchError, CorruptCheckpointError, UnsafeCheckpointError,
                         convert_vit_state_dict, load_checkpoint_file, load_vit_state_dict,
                         mismatch_report, unwrap_state_dict)
from .partition import partition_key_mask, partition_tokens, unpartition_tokens
from .rope import RoPE2D, grid_positions
from .rope_families import FAMILY_PRESETS, DINOv3RoPE, dinov3_coordinates
from .vision_transformer import (ARCH_SETTINGS, Attention, Block, PatchEmbed,
                                 RoPEVisionTransformer, resolve_arch)
from .vitdet import PartitionedAttentionPolicy, ViTDetVisionTransformer
from .window_shapes import check_window_shapes

__all__ = ['BlockLoopState', 'TokenPolicy', 'run_blocks', 'RoPE2D', 'grid_positions', 'ARCH_SETTINGS', 'Attention', 'Block', 'PatchEmbed',
           'RoPEVisionTransformer', 'resolve_arch', 'CheckpointMismatchError',
           'convert_vit_state_dict', 'load_vit_state_dict', 'mismatch_report',
           'unwrap_state_dict', 'load_checkpoint_file', 'CorruptCheckpointError',
           'UnsafeCheckpointError', 'partition_tokens', 'unpartition_tokens', 'partition_key_mask',
           'ViTDetVisionTransformer', 'PartitionedAttentionPolicy', 'FAMILY_PRESETS', 'DINOv3RoPE', 'dinov3_coordinates',
           'check_window_shapes']
