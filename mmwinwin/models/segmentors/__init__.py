"""Registered segmentors."""
from .expedited_encoder_decoder import ExpeditedEncoderDecoder

__all__ = ['ExpeditedEncoderDecoder']
