from .panoptic_metric import WinWinCocoPanopticMetric

__all__ = ['WinWinCocoPanopticMetric']
