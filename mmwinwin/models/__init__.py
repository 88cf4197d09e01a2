"""OpenMMLab glue: registered backbones, segmentors, heads over the pure core."""
from .backbones import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
