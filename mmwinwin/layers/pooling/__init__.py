"""Token pooling, the sanity floor among the token policies: average-pool the token grid
after block alpha, upsample the outputs bilinearly (``pooling``)."""
from .pooling import (TokenPoolingPolicy, TokenPoolingSettings, pool_grid,
                      pooled_forward_tokens, upsample_grid)

__all__ = ['TokenPoolingSettings', 'TokenPoolingPolicy', 'pool_grid', 'upsample_grid',
           'pooled_forward_tokens']
