from .panoptic_loading import WinWinLoadPanopticAnnotations

__all__ = ['WinWinLoadPanopticAnnotations']
