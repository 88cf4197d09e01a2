"""mmwinwin: plain vision transformers at high resolution for OpenMMLab.

``import mmwinwin`` registers every module into mmseg's and mmdet's registries (and
mmwinwin's own). The pure-PyTorch core, ``mmwinwin.layers``, needs torch only: when
the OpenMMLab stack (mmengine, mmcv with ops, mmseg, mmdet) is not importable, the
registration is skipped and the core still works.
"""
from .version import __version__

__all__ = ['__version__']


def _openmmlab_available() -> bool:
    try:
        import mmdet  # noqa: F401
        import mmengine  # noqa: F401
        import mmseg  # noqa: F401
    except ImportError:
        return False
    return True


if _openmmlab_available():
    from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402  (registers)
    from .utils.checkpoint import allow_mmengine_checkpoints, install_safe_checkpoint_loader

    allow_mmengine_checkpoints()
    install_safe_checkpoint_loader()  # mmengine's checkpoint loads: weights_only=True + allow-list
