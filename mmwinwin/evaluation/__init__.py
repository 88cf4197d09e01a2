"""Metrics (OpenMMLab glue) over the pure math in ``functional``."""
from . import flow_metric  # noqa: F401  (optical flow)
from .metrics import *  # noqa: F401,F403
