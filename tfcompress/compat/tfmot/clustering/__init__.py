"""`tfmot.clustering`: weight clustering."""

from tfcompress.compat.tfmot.clustering import keras

__all__ = ["keras"]
