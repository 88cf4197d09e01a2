"""Expedite: token clustering (``clustering``) and token reconstruction
(``reconstruction``) over local candidate neighbourhoods (``local_neighbors``); the
plug-in that runs them inside a ViT's block loop (``plugin``); and the same per
attention partition, for ViTDet / Swin-style models (``partitioned``,
``partitioned_plugin``)."""
from .clustering import ClusterResult, cluster_tokens
from .local_neighbors import LocalPlan, build_plan, candidate_index, resolve_cluster_grid
from .partitioned import (PartitionClusters, cluster_grid_of_partitions, cluster_partitions,
                          partitions_of_cluster_grid, reconstruct_partitions)
from .partitioned_plugin import PartitionedExpeditePolicy, expedited_partitioned_forward
from .plugin import ExpeditePolicy, ExpediteSettings, cluster_sequence, expedited_forward_tokens
from .reconstruction import (ReconstructionWeights, reconstruct_map, reconstruct_tokens,
                             reconstruction_weights)

__all__ = ['ClusterResult', 'cluster_tokens', 'LocalPlan', 'build_plan', 'candidate_index',
           'resolve_cluster_grid', 'ReconstructionWeights', 'reconstruction_weights',
           'reconstruct_tokens', 'reconstruct_map', 'ExpediteSettings', 'cluster_sequence',
           'expedited_forward_tokens', 'ExpeditePolicy', 'PartitionClusters', 'cluster_partitions',
           'reconstruct_partitions', 'cluster_grid_of_partitions', 'partitions_of_cluster_grid',
           'expedited_partitioned_forward', 'PartitionedExpeditePolicy']
