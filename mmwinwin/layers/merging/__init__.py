"""Token merging (ToMe, Bolya et al. 2023; its 2D variant tomesd): bipartite soft
matching with one destination per grid cell, size-weighted merging and unmerging
(``matching``), the token policy of the one block loop (``policy``) and its ViTDet form,
merging per attention partition (``partitioned``)."""
from .matching import (Matching, bipartite_soft_matching, grid_destinations, merge_tokens,
                       unmerge_tokens, update_holder)
from .partitioned import PartitionedTokenMergingPolicy, merged_partitioned_forward
from .policy import (MERGING_OPTIONS, TokenMergingPolicy, TokenMergingSettings,
                     merged_forward_tokens)

__all__ = ['Matching', 'bipartite_soft_matching', 'grid_destinations', 'merge_tokens',
           'unmerge_tokens', 'update_holder', 'TokenMergingSettings', 'TokenMergingPolicy',
           'merged_forward_tokens', 'MERGING_OPTIONS', 'PartitionedTokenMergingPolicy',
           'merged_partitioned_forward']
