"""`tfmot.quantization`: quantization-aware training."""

from tfcompress.compat.tfmot.quantization import keras

__all__ = ["keras"]
