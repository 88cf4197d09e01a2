"""Pure (NumPy) evaluation math, importable without the OpenMMLab stack."""
from .panoptic_quality import accumulate, id_to_rgb, pq_image_stats, pq_summary, rgb_to_id

__all__ = ['pq_image_stats', 'pq_summary', 'accumulate', 'rgb_to_id', 'id_to_rgb']
