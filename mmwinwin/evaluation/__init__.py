"""Metrics (OpenMMLab glue)."""
