"""`tfmot.quantization.keras.quantizers`."""

from tfcompress.compat.tfmot.quantization.keras.quantizers.all_values_quantizer import (
    AllValuesQuantizer,
)
from tfcompress.compat.tfmot.quantization.keras.quantizers.last_value_quantizer import (
    LastValueQuantizer,
)
from tfcompress.compat.tfmot.quantization.keras.quantizers.moving_average_quantizer import (
    MovingAverageQuantizer,
)
from tfcompress.compat.tfmot.quantization.keras.quantizers.quantizer import Quantizer

__all__ = ["AllValuesQuantizer", "LastValueQuantizer", "MovingAverageQuantizer", "Quantizer"]
