
"""Metrics (registered on import)."""
from . import flow_metric  # noqa: F401  (optical flow)
