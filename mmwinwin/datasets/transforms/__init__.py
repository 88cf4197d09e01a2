"""Registered data transforms."""
from .panoptic_loading import WinWinLoadPanopticAnnotations
from .winwin_packing import WinWinPackDetInputs, WinWinPackSegInputs
from .winwin_windows import WINWIN_META_KEYS, WinWinWindows

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS', 'WinWinLoadPanopticAnnotations',
           'WinWinPackSegInputs', 'WinWinPackDetInputs']
