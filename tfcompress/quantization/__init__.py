"""Quantization-aware training for Keras 3: fake-quantized weights and activations that
convert to a true int8 (or 4-bit weight) `.tflite`, batch-norm folding, mixed precision,
and pruning- or clustering-preserving QAT."""

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.quantize import (
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_model,
    quantize_scope,
    strip_quantization,
)
from tfcompress.quantization.quantize_annotate import QuantizeAnnotate
from tfcompress.quantization.quantize_apply import is_quantized, quantize_apply
from tfcompress.quantization.quantize_config import QuantizeConfig
from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.quantize_wrapper import QuantizeWrapper
from tfcompress.quantization.quantizer import Quantizer
from tfcompress.quantization.registry import (
    QuantizableLayer,
    register_quantize_config,
    register_quantize_split,
)
from tfcompress.quantization.scheme import SCHEMES, QuantizeScheme
from tfcompress.quantization.weight_quantizer import WeightQuantizer

__all__ = [
    "ActivationQuantizer",
    "QuantizableLayer",
    "QuantizeAnnotate",
    "QuantizeConfig",
    "QuantizeLayer",
    "QuantizeScheme",
    "QuantizeWrapper",
    "Quantizer",
    "SCHEMES",
    "WeightQuantizer",
    "is_quantized",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "quantize_scope",
    "register_quantize_config",
    "register_quantize_split",
    "strip_quantization",
]
