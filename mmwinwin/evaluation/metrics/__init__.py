from .flow_metric import FlowMetric
from .panoptic_metric import CocoPanopticMetric

__all__ = ['CocoPanopticMetric', 'FlowMetric']
