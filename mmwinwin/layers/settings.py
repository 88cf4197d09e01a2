"""Refusing settings keys that nobody reads, with the closest valid name.

A misspelt key in a settings dict (``test_cfg=dict(mdoe='slide')``) or in a module's
keyword arguments (``dict(type='CheckpointHook', intervl=5)``) would otherwise be
ignored, or fail only when first used. :func:`check_settings_keys` is the one check every
mmwinwin settings dict goes through (the model's own ``__init__`` and the tools'
start-up check, ``mmwinwin/utils/settings.py``); :func:`check_call_kwargs` checks kwargs
against a constructor's signature. Pure Python, importable with torch alone.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable, Mapping

__all__ = ['UnknownSettingError', 'ConfigSettingError', 'check_settings_dict', 'check_settings_keys',
           'check_call_kwargs', 'accepted_kwargs', 'cooperative_kwargs', 'check_forwarded_kwargs']


class UnknownSettingError(KeyError):
    """A settings dict holds a key that nothing reads (usually a typo)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ''


class ConfigSettingError(ValueError):
    """A config setting holds a value that cannot work (a data root that is not set or
    does not exist, a training loop of no kind); the message names the setting and the fix."""


def _hint(key: str, allowed: Iterable[str]) -> str:
    allowed = sorted(str(a) for a in allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    return f'{hint} Valid keys: {allowed}.'


def check_settings_keys(settings: Mapping | None, allowed: Iterable[str], where: str) -> None:
    """Raise :class:`UnknownSettingError` naming the first unknown key of ``settings``
    (``where`` says which dict, e.g. ``'model.test_cfg'``) and the closest valid one."""
    if not settings:
        return
    allowed = set(allowed)
    unknown = [k for k in settings if k not in allowed]
    if unknown:
        more = f' (and {unknown[1:]})' if len(unknown) > 1 else ''
        raise UnknownSettingError(
            f'{where}: unknown key {unknown[0]!r}{more}; nothing reads it.'
            + _hint(unknown[0], allowed))


def check_settings_dict(cfg: Any, allowed: Iterable[str], where: str) -> None:
    """Raise a clear ``TypeError`` unless ``cfg`` is a dict, and an
    :class:`UnknownSettingError` for a key not in ``allowed`` (the settings dataclasses'
    ``build``: ``expedite``, ``token_merging``, ``token_pooling``)."""
    if not isinstance(cfg, dict):
        raise TypeError(f'{where} must be a dict of settings, got {type(cfg).__name__}.')
    check_settings_keys(cfg, allowed, where)


def accepted_kwargs(fn: Callable, named_only: bool = False) -> set[str] | None:
    """Keyword names ``fn`` (a class: its ``__init__``) accepts; ``None`` when it takes
    ``**kwargs`` (anything may be valid), unless ``named_only`` (the caller knows that
    whatever lands in ``**kwargs`` is refused later, e.g. at the first use)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD and not named_only:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    names.discard('self')
    return names


def check_call_kwargs(fn: Callable, kwargs: Mapping[str, Any], where: str,
                      ignore: Iterable[str] = ('type', '_scope_'),
                      named_only: bool = False) -> None:
    """Refuse ``kwargs`` that ``fn`` (a class or function) does not take, naming the
    closest parameter; nothing is checked when ``fn`` takes ``**kwargs`` (unless
    ``named_only``, see :func:`accepted_kwargs`)."""
    names = accepted_kwargs(fn, named_only)
    if names is None:
        return
    given = {k: v for k, v in kwargs.items() if k not in set(ignore)}
    check_settings_keys(given, names, where)


def cooperative_kwargs(cls: type) -> set[str] | None:
    """Keyword names a class built by cooperative ``__init__`` s accepts: each
    ``__init__`` up its MRO that takes ``**kwargs`` passes them on to the next one, until
    one takes no ``**kwargs`` (e.g. ``RoPEViTDet`` -> ``ViTDetVisionTransformer`` ->
    ``RoPEViT`` -> ``RoPEVisionTransformer``). ``None`` when the chain never ends (the
    last ``__init__`` still takes ``**kwargs``: anything may be valid). Meant for mmwinwin's
    own classes, whose ``**kwargs`` always go to ``super().__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return names
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self'}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def check_forwarded_kwargs(obj: Any, target: Callable, kwargs: Mapping[str, Any],
                           where: str | None = None) -> None:
    """In a cooperative ``__init__`` that passes ``**kwargs`` on to ``target`` (the last
    ``__init__`` of the chain): refuse those ``target`` does not take, with the closest
    name among everything ``type(obj)`` accepts (:func:`cooperative_kwargs`), instead of
    Python's bare "unexpected keyword argument"."""
    names = accepted_kwargs(target)
    if names is None:
        return
    unknown = {k: v for k, v in kwargs.items() if k not in names}
    if unknown:
        allowed = cooperative_kwargs(type(obj)) or names
        check_settings_keys(unknown, allowed - set(unknown), where or type(obj).__name__)
