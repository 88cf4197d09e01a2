"""The tools' start-up check of settings keys: run by ``tools/train.py`` and
``tools/test.py`` on the merged config (config file *and* ``--cfg-options``), before the
Runner is built, so a typo stops the run at once instead of being ignored or failing at
the first checkpoint save.

Checked, each with :func:`mmwinwin.layers.settings.check_settings_keys` (the closest valid
name in the error):

* ``model.test_cfg`` / ``model.train_cfg`` of mmseg segmentors (``EncoderDecoder``,
  ``DepthEstimator`` and mmwinwin's subclasses): the keys mmseg and the decode heads read
  (``mmwinwin/models/segmentor_settings.py``);
* ``default_hooks.*`` and ``custom_hooks``: each hook's kwargs against its constructor
  (``CheckpointHook`` takes ``**kwargs`` but passes them to ``Runner.save_checkpoint``,
  which already receives all its parameters from the hook, so any extra key fails at the
  first save: only its named parameters are valid);
* every mmwinwin transform in a ``pipeline`` (e.g. ``WinWinWindows``): its kwargs
  against its constructor.

mmwinwin's models check their own settings dicts (``expedite``, flow ``windows`` /
``test_cfg``, segmentor ``test_cfg`` / ``train_cfg``) when they are built, with the same helper.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping

from ..layers.settings import check_call_kwargs
from ..models.segmentor_settings import check_segmentor_settings

__all__ = ['check_config_settings']


def _resolve(root, type_: Any, scope: str):
    """The class a config ``type`` names in ``root``'s registry tree (``None`` if unknown)."""
    if inspect.isclass(type_) or callable(type_):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        with root.switch_scope_and_registry(scope) as registry:
            return registry.get(type_)
    except Exception:  # an unknown type is reported by the Runner when it builds it
        return None


def _pipelines(node: Any, path: str) -> Iterator[tuple[str, list]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            sub = f'{path}.{key}' if path else str(key)
            if key == 'pipeline' and isinstance(value, (list, tuple)):
                yield sub, list(value)
            else:
                yield from _pipelines(value, sub)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pipelines(value, f'{path}.{i}')


def check_config_settings(cfg) -> None:
    """Refuse unknown keys in the settings dicts of ``cfg`` (see the module docstring);
    raises :class:`~mmwinwin.layers.settings.UnknownSettingError`."""
    from mmengine.hooks import CheckpointHook
    from mmengine.registry import HOOKS, MODELS, TRANSFORMS
    scope = cfg.get('default_scope', None) or 'mmengine'

    model = cfg.get('model', None)
    if isinstance(model, Mapping):
        cls = _resolve(MODELS, model.get('type'), scope)
        from mmseg.models.segmentors import DepthEstimator, EncoderDecoder
        if inspect.isclass(cls) and issubclass(cls, (EncoderDecoder, DepthEstimator)):
            check_segmentor_settings(model.get('test_cfg'), model.get('train_cfg'),
                                     model.get('decode_head'), model.get('auxiliary_head'))

    hooks = [(f'default_hooks.{name}', h) for name, h in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks.{i}', h) for i, h in enumerate(cfg.get('custom_hooks') or [])]
    for where, hook in hooks:
        if isinstance(hook, Mapping) and 'type' in hook:
            cls = _resolve(HOOKS, hook['type'], scope)
            if cls is not None:
                check_call_kwargs(cls, hook, where,
                                  named_only=inspect.isclass(cls) and issubclass(cls, CheckpointHook))

    for where, pipeline in _pipelines(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg, ''):
        for i, step in enumerate(pipeline):
            if isinstance(step, Mapping) and 'type' in step:
                cls = _resolve(TRANSFORMS, step['type'], scope)
                if cls is not None and getattr(cls, '__module__', '').startswith('mmwinwin.'):
                    check_call_kwargs(cls, step, f'{where}.{i} ({cls.__name__})')


def exit_on_unknown_settings(cfg) -> None:
    """The tools' start-up check: :func:`check_config_settings`, an unknown key ending the
    run with its message (no traceback) before anything is built."""
    from ..layers.settings import UnknownSettingError
    try:
        check_config_settings(cfg)
    except UnknownSettingError as err:
        raise SystemExit(str(err)) from None
