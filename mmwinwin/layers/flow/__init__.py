"""Optical flow: the binocular RoPE ViT with a DPT head (``croco``), CroCo / CroCo-v2
weights (``croco_checkpoint``), warping, errors and the loss (``ops``), and
CroCo-Flow-style tiled inference (``tiling``)."""
from .croco import CroCoFlowNet, DPTFlowHead
from .croco_checkpoint import convert_croco_state_dict, load_croco_state_dict
from .ops import (backward_warp, endpoint_error, flow_error_stats, masked_epe_loss,
                  spring_error_stats, spring_wauc, subpixel_gt)
from .tiling import tile_offsets, tile_weight, tiled_flow

__all__ = ['CroCoFlowNet', 'DPTFlowHead', 'convert_croco_state_dict', 'load_croco_state_dict',
           'backward_warp', 'endpoint_error', 'flow_error_stats', 'masked_epe_loss',
           'spring_error_stats', 'spring_wauc', 'subpixel_gt', 'tile_offsets', 'tile_weight',
           'tiled_flow']
