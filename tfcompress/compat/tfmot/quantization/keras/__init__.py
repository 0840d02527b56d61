"""`tfmot.quantization.keras` on tfcompress's quantization-aware training."""

from tfcompress.compat.tfmot.experimental.combine import (
    Default8BitClusterPreserveQuantizeScheme,
    Default8BitPrunePreserveQuantizeScheme,
)
from tfcompress.compat.tfmot.quantization.keras import default_8bit, quantizers
from tfcompress.compat.tfmot.quantization.keras.quantize import (
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
)
from tfcompress.compat.tfmot.quantization.keras.quantize_config import QuantizeConfig
from tfcompress.quantization import (
    QuantizeScheme,
    QuantizeWrapper,
    quantize_model,
    quantize_scope,
)

__all__ = [
    "Default8BitClusterPreserveQuantizeScheme",
    "Default8BitPrunePreserveQuantizeScheme",
    "QuantizeConfig",
    "QuantizeScheme",
    "QuantizeWrapper",
    "default_8bit",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "quantize_scope",
    "quantizers",
]
