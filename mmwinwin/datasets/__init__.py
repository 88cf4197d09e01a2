
"""Datasets, formats and transforms (registered on import)."""
from . import flow_datasets, flow_transforms  # noqa: F401  (optical flow)
