"""Registered data transforms."""
from .winwin_windows import WINWIN_META_KEYS, WinWinWindows

__all__ = ['WinWinWindows', 'WINWIN_META_KEYS']
