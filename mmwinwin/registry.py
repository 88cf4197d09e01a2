"""mmwinwin's registries and the decorator that also registers into mmseg and mmdet.

mmwinwin's own registries are children of mmengine's roots (scope ``mmwinwin``), so
``type='mmwinwin.RoPEViT'`` resolves from any scope. Every module is also registered,
under the same (unique) name, into mmseg's and mmdet's registries, so configs keep
their host's ``default_scope`` and only add
``custom_imports = dict(imports=['mmwinwin'], allow_failed_imports=False)``.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from mmdet import registry as mmdet_registry
from mmengine import registry as root
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

__all__ = ['MODELS', 'TRANSFORMS', 'DATASETS', 'METRICS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS',
           'TASK_UTILS', 'LOOPS', 'register']

MODELS = Registry('model', parent=root.MODELS, scope='mmwinwin', locations=['mmwinwin.models'])
TRANSFORMS = Registry('transform', parent=root.TRANSFORMS, scope='mmwinwin',
                      locations=['mmwinwin.datasets'])
DATASETS = Registry('dataset', parent=root.DATASETS, scope='mmwinwin',
                    locations=['mmwinwin.datasets'])
METRICS = Registry('metric', parent=root.METRICS, scope='mmwinwin',
                   locations=['mmwinwin.evaluation'])
HOOKS = Registry('hook', parent=root.HOOKS, scope='mmwinwin', locations=['mmwinwin.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=root.OPTIM_WRAPPER_CONSTRUCTORS, scope='mmwinwin',
                                      locations=['mmwinwin.engine'])
TASK_UTILS = Registry('task util', parent=root.TASK_UTILS, scope='mmwinwin',
                      locations=['mmwinwin.models'])
LOOPS = Registry('loop', parent=root.LOOPS, scope='mmwinwin', locations=['mmwinwin.engine'])

# The rest of mmengine's roots get an mmwinwin child too, so a config with
# default_scope='mmwinwin' (optical flow) finds optimizers, schedulers, visualizers ...
# without mmengine's "falls back to the root registry" warnings.
OPTIMIZERS = Registry('optimizer', parent=root.OPTIMIZERS, scope='mmwinwin')
OPTIM_WRAPPERS = Registry('optim wrapper', parent=root.OPTIM_WRAPPERS, scope='mmwinwin')
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=root.PARAM_SCHEDULERS, scope='mmwinwin')
VISUALIZERS = Registry('visualizer', parent=root.VISUALIZERS, scope='mmwinwin')
VISBACKENDS = Registry('vis_backend', parent=root.VISBACKENDS, scope='mmwinwin')
LOG_PROCESSORS = Registry('log_processor', parent=root.LOG_PROCESSORS, scope='mmwinwin')
DATA_SAMPLERS = Registry('data sampler', parent=root.DATA_SAMPLERS, scope='mmwinwin')
EVALUATOR = Registry('evaluator', parent=root.EVALUATOR, scope='mmwinwin')
MODEL_WRAPPERS = Registry('model_wrapper', parent=root.MODEL_WRAPPERS, scope='mmwinwin')
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=root.WEIGHT_INITIALIZERS,
                               scope='mmwinwin')
RUNNERS = Registry('runner', parent=root.RUNNERS, scope='mmwinwin')
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=root.RUNNER_CONSTRUCTORS,
                               scope='mmwinwin')

_OWN = dict(MODELS=MODELS, TRANSFORMS=TRANSFORMS, DATASETS=DATASETS, METRICS=METRICS,
            HOOKS=HOOKS, OPTIM_WRAPPER_CONSTRUCTORS=OPTIM_WRAPPER_CONSTRUCTORS,
            TASK_UTILS=TASK_UTILS, LOOPS=LOOPS)

T = TypeVar('T')


def register(kind: str, name: str | None = None, hosts: bool = True) -> Callable[[T], T]:
    """Register a class into mmwinwin's ``kind`` registry and, with ``hosts=True``, into
    mmseg's and mmdet's too, so configs of either host name it without a scope.

    A class whose name a host already uses (``CocoPanopticMetric``,
    ``LoadPanopticAnnotations``, ViTDet's ``SimpleFPN``) is registered with
    ``hosts=False``: it lives in mmwinwin's scope only, and configs name it
    ``type='mmwinwin.X'`` (the mmyolo way), instead of carrying a prefix in its name.

    Example::

        @register('MODELS')
        class RoPEViT(...): ...
    """
    if kind not in _OWN:
        raise KeyError(f'Unknown registry kind {kind!r}; choose one of {sorted(_OWN)}.')

    def decorator(cls: T) -> T:
        targets = [_OWN[kind]]
        if hosts:
            targets += [getattr(mmseg_registry, kind), getattr(mmdet_registry, kind)]
        for registry in targets:
            registry.register_module(name=name, module=cls)
        return cls

    return decorator
