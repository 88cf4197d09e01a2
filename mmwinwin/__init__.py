"""mmwinwin: plain vision transformers at high resolution for OpenMMLab.

``import mmwinwin`` registers every module into mmseg's and mmdet's registries (and
mmwinwin's own), and changes nothing else outside mmwinwin. The pure-PyTorch core, ``mmwinwin.layers``, needs torch only: when
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
    # Registers mmwinwin's modules, and nothing else: no loader, global or setting of
    # mmengine, torch, mmseg or mmdet is changed (tests/test_host_native.py). Safe checkpoint
    # loading is switched on per call or per run (mmwinwin.utils.checkpoint).
    from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402  (registers)
