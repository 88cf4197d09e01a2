"""Metrics (OpenMMLab glue) over the pure math in ``functional``."""
from .metrics import *  # noqa: F401,F403
