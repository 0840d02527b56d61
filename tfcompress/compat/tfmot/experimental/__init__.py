"""`tfmot.experimental`: the collaborative-optimization schemes."""

from tfcompress.compat.tfmot.experimental import combine

__all__ = ["combine"]
