from .simple_fpn import WinWinSimpleFPN

__all__ = ['WinWinSimpleFPN']
