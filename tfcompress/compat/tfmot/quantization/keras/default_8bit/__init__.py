"""`tfmot.quantization.keras.default_8bit`: the default 8-bit scheme."""

from tfcompress.compat.tfmot.quantization.keras.default_8bit.default_8bit_quantize_scheme import (
    Default8BitQuantizeScheme,
)

__all__ = ["Default8BitQuantizeScheme"]
