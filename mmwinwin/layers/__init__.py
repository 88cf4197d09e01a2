"""Pure-PyTorch core of mmwinwin: importable with torch alone (no mmcv/mmseg/mmdet).

One folder per concept, layered bottom-up (each imports only the ones above it):

* ``vit``: the plain ViT with explicit token positions, 2D RoPE, attention partitions
  (ViTDet), checkpoint key conversion.
* ``winwin``: Win-Win's windows (sampling, gather / scatter, crops; image pairs).
* ``expedite``: Expedite's token clustering and reconstruction and their plug-in.
* ``merging``: token merging (ToMe / tomesd) as a token policy of the block loop.
* ``pooling``: token pooling (average-pool the grid, upsample the outputs), the floor.
* ``flow``: the binocular flow network, CroCo weights, flow ops and tiled inference.
* ``norm``: a synchronised batch norm that also runs on CPU (gloo).
* ``settings.py``: refusing unknown settings keys with the closest valid name (used by all).
"""
from .expedite import *  # noqa: F401,F403
from .expedite import __all__ as _expedite_all
from .merging import *  # noqa: F401,F403
from .merging import __all__ as _merging_all
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling_all
from .flow import *  # noqa: F401,F403
from .flow import __all__ as _flow_all
from .norm import *  # noqa: F401,F403
from .norm import __all__ as _norm_all
from .vit import *  # noqa: F401,F403
from .vit import __all__ as _vit_all
from .winwin import *  # noqa: F401,F403
from .winwin import __all__ as _winwin_all
from .settings import (ConfigSettingError, UnknownSettingError, check_call_kwargs,
                       check_settings_keys)

__all__ = [*_vit_all, *_winwin_all, *_expedite_all, *_merging_all, *_pooling_all, *_flow_all,
           *_norm_all,
           'UnknownSettingError', 'ConfigSettingError', 'check_call_kwargs',
           'check_settings_keys']
