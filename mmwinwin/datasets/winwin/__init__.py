"""Win-Win's data side: the window-masking transform and the packers that carry it."""
from .packing import WinWinPackDetInputs, WinWinPackSegInputs
from .windows import WINWIN_META_KEYS, WinWinWindows

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS', 'WinWinPackSegInputs', 'WinWinPackDetInputs']
