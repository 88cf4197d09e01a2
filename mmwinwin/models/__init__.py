"""OpenMMLab glue, mirroring the core: ``vit`` (RoPE ViT / ViTDet backbones, simple FPN),
``winwin`` (Win-Win segmentors), ``expedite`` (expedited backbones and host adapters),
``flow`` (the flow estimator), ``heads``, ``losses``, ``preprocessors`` (input checks)."""
from .expedite import *  # noqa: F401,F403
from .flow import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .preprocessors import *  # noqa: F401,F403
from .vit import *  # noqa: F401,F403
from .winwin import *  # noqa: F401,F403
