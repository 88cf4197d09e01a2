"""Registered datasets and transforms; generators of small datasets in ``synthetic``."""
from .transforms import *  # noqa: F401,F403
