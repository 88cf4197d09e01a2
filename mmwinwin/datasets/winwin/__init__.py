"""Win-Win's data side: the window-masking transform and the packers that carry it."""
from .packing import CANVAS_META_KEY, WinWinPackDetInputs, WinWinPackSegInputs, cut_canvas
from .windows import WINWIN_META_KEYS, WinWinWindows

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS', 'WinWinPackSegInputs', 'WinWinPackDetInputs',
           'CANVAS_META_KEY', 'cut_canvas']
