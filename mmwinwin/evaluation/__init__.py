"""Metrics (OpenMMLab glue)."""
from . import flow_metric  # noqa: F401  (optical flow)
