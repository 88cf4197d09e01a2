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
  against its constructor;
* ``train_cfg`` / ``val_cfg`` / ``test_cfg``: against the loop class mmengine's Runner
  builds from them (``type`` in the ``LOOPS`` registry; without ``type``,
  ``EpochBasedTrainLoop`` / ``IterBasedTrainLoop`` by ``by_epoch``, ``ValLoop``,
  ``TestLoop``);
* ``randomness``: against ``Runner.set_randomness``;
* every ``*_dataloader.dataset`` (wrappers' inner datasets too), the hosts' included:
  a ``data_root`` that is not set while the dataset's ``data_prefix`` / ``ann_file`` are
  relative paths not found from the current folder is a
  :class:`~mmwinwin.layers.settings.ConfigSettingError` naming
  ``train_dataloader.dataset.data_root`` and the fix (a data root that is set but missing
  is reported by mmwinwin's datasets when built; not here, since a test run needs no
  training data);
* ``model`` and its ``backbone`` / ``neck`` / ``decode_head`` / ``auxiliary_head`` when
  the class is mmwinwin's: against every ``__init__`` its ``**kwargs`` pass through
  (mmwinwin's backbones also refuse an unknown argument themselves when built, so this
  holds under mmseg's and mmdet's own tools too).

mmwinwin's models check their own settings dicts (``expedite``, flow ``windows`` /
``test_cfg``, segmentor ``test_cfg`` / ``train_cfg``) when they are built, with the same helper.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping

from ..layers.settings import (ConfigSettingError, accepted_kwargs, check_call_kwargs,
                               check_settings_keys, cooperative_kwargs)
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


def _check_own_kwargs(cls, kwargs: Mapping, where: str) -> None:
    """An mmwinwin class's kwargs against every ``__init__`` they pass through."""
    if not inspect.isclass(cls) or not cls.__module__.startswith('mmwinwin.'):
        return
    names = cooperative_kwargs(cls)
    if names is not None:
        given = {k: v for k, v in kwargs.items() if k not in ('type', '_scope_')}
        check_settings_keys(given, names, f'{where} ({cls.__name__})')


def _check_loops(cfg, scope: str) -> None:
    """``train_cfg`` / ``val_cfg`` / ``test_cfg`` against the loop the Runner builds
    (``Runner.build_train_loop`` / ``build_val_loop`` / ``build_test_loop``)."""
    from mmengine.registry import LOOPS
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
    # the Runner passes these itself (as default_args of LOOPS.build)
    given_by_runner = ('type', '_scope_', 'runner', 'dataloader', 'evaluator')

    def check_call_kwargs(cls, kwargs, where, ignore):
        names = accepted_kwargs(cls)
        if names is not None:
            check_settings_keys({k: v for k, v in kwargs.items() if k not in ignore},
                                names - set(ignore), where)
    for key, default in (('train_cfg', None), ('val_cfg', ValLoop), ('test_cfg', TestLoop)):
        loop = cfg.get(key, None)
        if not isinstance(loop, Mapping):
            continue
        if 'type' in loop:
            if key == 'train_cfg' and 'by_epoch' in loop:
                raise ConfigSettingError(
                    f'train_cfg has both type={loop["type"]!r} and by_epoch='
                    f'{loop["by_epoch"]!r}: give one of them (by_epoch=True / False picks '
                    "mmengine's EpochBasedTrainLoop / IterBasedTrainLoop).")
            cls = _resolve(LOOPS, loop['type'], scope)
            if cls is None:  # an unknown type is reported by the Runner when it builds it
                continue
            where = f'{key} ({getattr(cls, "__name__", loop["type"])})'
            check_call_kwargs(cls, loop, where, ignore=given_by_runner)
        elif key == 'train_cfg':
            if 'by_epoch' not in loop:
                raise ConfigSettingError(
                    f'train_cfg={dict(loop)} says neither which loop nor by_epoch: the Runner '
                    "needs one of them. Write train_cfg=dict(type='IterBasedTrainLoop', "
                    "max_iters=..., val_interval=...) (or type='EpochBasedTrainLoop', "
                    'max_epochs=...), or the shorthand by_epoch=False / True.')
            cls = EpochBasedTrainLoop if loop['by_epoch'] else IterBasedTrainLoop
            rest = {k: v for k, v in loop.items() if k != 'by_epoch'}
            check_call_kwargs(cls, rest, f'train_cfg (by_epoch={loop["by_epoch"]!r}: '
                              f'{cls.__name__})', ignore=given_by_runner)
        else:
            check_call_kwargs(default, loop, f'{key} ({default.__name__})',
                              ignore=given_by_runner)


def _datasets(node: Mapping, where: str) -> Iterator[tuple[str, Mapping]]:
    """A dataset config and those a wrapper holds (``dataset`` / ``datasets``)."""
    yield where, node
    inner = node.get('dataset')
    if isinstance(inner, Mapping):
        yield from _datasets(inner, f'{where}.dataset')
    for i, sub in enumerate(node.get('datasets') or []):
        if isinstance(sub, Mapping):
            yield from _datasets(sub, f'{where}.datasets.{i}')


def _check_data_roots(cfg, scope: str) -> None:
    """A dataset whose ``data_root`` is not set reads ``data_prefix`` / ``ann_file``
    relative to the current folder: refuse it when those paths are not there (the host
    would fail at the first listing with e.g. ``FileNotFoundError: 'images/training'``)."""
    import os
    import os.path as osp

    from mmengine.dataset import BaseDataset
    from mmengine.registry import DATASETS
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataloader = cfg.get(loader, None)
        if not isinstance(dataloader, Mapping) or not isinstance(dataloader.get('dataset'),
                                                                 Mapping):
            continue
        for where, dataset in _datasets(dataloader['dataset'], f'{loader}.dataset'):
            cls = _resolve(DATASETS, dataset.get('type'), scope)
            if (not inspect.isclass(cls) or not issubclass(cls, BaseDataset)
                    or dataset.get('data_root') or dataset.get('backend_args')):
                continue
            paths = {f'data_prefix[{k!r}]': v for k, v in (dataset.get('data_prefix') or {}).items()
                     if isinstance(v, str)}
            if dataset.get('ann_file'):
                paths['ann_file'] = dataset['ann_file']
            relative = {k: v for k, v in paths.items() if not osp.isabs(v) and '://' not in v}
            missing = {k: v for k, v in relative.items() if not v or not osp.exists(v)}
            if paths and not missing:
                continue  # absolute paths, or relative ones that are there: no root needed
            reads = (', '.join(f'{k}={v!r}' for k, v in missing.items()) if missing
                     else 'its files (no data_prefix given)')
            raise ConfigSettingError(
                f'{where}.data_root is not set ({dataset.get("data_root")!r}): '
                f'{getattr(cls, "__name__", cls)} would read {reads} relative to the current '
                f'folder {os.getcwd()!r}, where they are not. Set it to the dataset folder: '
                f"{where}.data_root='data/...' in the config, or on the command line "
                f'--cfg-options {where}.data_root=PATH.')


def check_config_settings(cfg) -> None:
    """Refuse unknown keys in the settings dicts of ``cfg`` (see the module docstring);
    raises :class:`~mmwinwin.layers.settings.UnknownSettingError`."""
    from mmengine.hooks import CheckpointHook
    from mmengine.registry import HOOKS, MODELS, TRANSFORMS
    scope = cfg.get('default_scope', None) or 'mmengine'

    model = cfg.get('model', None)
    if isinstance(model, Mapping):
        cls = _resolve(MODELS, model.get('type'), scope)
        _check_own_kwargs(cls, model, 'model')
        for part in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
            value = model.get(part)
            many = isinstance(value, (list, tuple))
            for i, sub in enumerate(value if many else [value]):
                if isinstance(sub, Mapping) and 'type' in sub:
                    _check_own_kwargs(_resolve(MODELS, sub['type'], scope), sub,
                                      f'model.{part}' + (f'.{i}' if many else ''))
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

    _check_loops(cfg, scope)
    randomness = cfg.get('randomness', None)
    if isinstance(randomness, Mapping):
        from mmengine.runner import Runner
        check_call_kwargs(Runner.set_randomness, randomness, 'randomness', ignore=())

    for where, pipeline in _pipelines(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg, ''):
        for i, step in enumerate(pipeline):
            if isinstance(step, Mapping) and 'type' in step:
                cls = _resolve(TRANSFORMS, step['type'], scope)
                if cls is not None and getattr(cls, '__module__', '').startswith('mmwinwin.'):
                    check_call_kwargs(cls, step, f'{where}.{i} ({cls.__name__})')

    # after the key checks: a typo is reported first, a missing data root after
    _check_data_roots(cfg, scope)


def exit_on_unknown_settings(cfg) -> None:
    """The tools' start-up check: :func:`check_config_settings`, an unknown key (or a
    setting that cannot work, e.g. a data root that is not there) ending the run with its
    message (no traceback) before anything is built."""
    from ..layers.settings import UnknownSettingError
    try:
        check_config_settings(cfg)
    except (UnknownSettingError, ConfigSettingError) as err:
        raise SystemExit(str(err)) from None
