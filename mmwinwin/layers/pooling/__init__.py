"""Token pooling, the sanity floor among the token policies: average-pool the token grid
after block alpha, upsample the outputs bilinearly (``pooling``)."""
from .pooling import (PartitionedTokenPoolingPolicy, TokenPoolingPolicy, TokenPoolingSettings,
                      pool_grid, pooled_forward_tokens, pooled_partitioned_forward,
                      upsample_grid)

__all__ = ['TokenPoolingSettings', 'TokenPoolingPolicy', 'pool_grid', 'upsample_grid',
           'pooled_forward_tokens', 'PartitionedTokenPoolingPolicy',
           'pooled_partitioned_forward']
