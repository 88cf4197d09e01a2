"""Errors for a dataset whose ``data_root`` is not set or whose folders are not there:
they name the setting (``data_root`` / ``data_prefix`` / the split arguments), the path
looked for and the fix, instead of ``FileNotFoundError: 'images/training'`` or a
``TypeError`` from ``os.path.join(None, ...)``.

The tools' start-up check (``mmwinwin.utils.check_config_settings``) names the dataloader
too (``train_dataloader.dataset.data_root``) for every dataset, the hosts' included.
"""
from __future__ import annotations

import os.path as osp

__all__ = ['require_data_root', 'missing_dir_error', 'check_data_dir']


def require_data_root(dataset, layout: str) -> str:
    """``dataset.data_root``, or a ``FileNotFoundError`` saying it is not set."""
    root = getattr(dataset, 'data_root', None)
    if not root:
        name = type(dataset).__name__
        raise FileNotFoundError(
            f'{name}: data_root is not set ({root!r}), so there is no dataset folder to read. '
            f'Set data_root to the folder holding the dataset ({layout}), e.g. '
            f"dict(type='{name}', data_root='data/...') or on the command line "
            '--cfg-options train_dataloader.dataset.data_root=PATH (and val_ / test_).')
    return root


def missing_dir_error(dataset, path: str, setting: str, layout: str) -> FileNotFoundError:
    """The error for a folder ``path`` (from ``data_root`` and ``setting``) that is not there."""
    name = type(dataset).__name__
    root = getattr(dataset, 'data_root', None)
    if root and not osp.isdir(root):
        return FileNotFoundError(
            f'{name}: data_root {root!r} does not exist (looked for {path!r}). Point data_root '
            f'at the folder holding the dataset ({layout}).')
    where = f'data_root {root!r} has no such folder' if root else 'data_root is not set'
    return FileNotFoundError(
        f'{name}: folder {path!r} does not exist ({where}; the folder comes from {setting}). '
        f'Check data_root and {setting} against the dataset layout ({layout}).')


def check_data_dir(dataset, path: str, setting: str, layout: str) -> None:
    """Raise :func:`missing_dir_error` unless ``path`` is a local folder."""
    if not osp.isdir(path):
        raise missing_dir_error(dataset, path, setting, layout)
