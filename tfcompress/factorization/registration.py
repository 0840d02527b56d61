"""Makes the factorized layers known to the report (kernels, MACs) and to QAT (splits)."""

from __future__ import annotations

import keras

from tfcompress.core.weights import to_matrix
from tfcompress.factorization.costs import conv_macs, dense_macs
from tfcompress.factorization.factorized_conv2d import FactorizedConv2D
from tfcompress.factorization.factorized_dense import FactorizedDense
from tfcompress.quantization import (
    ActivationQuantizer,
    QuantizeConfig,
    WeightQuantizer,
    register_quantize_config,
    register_quantize_split,
)
from tfcompress.reporting import register_layer


def _out_major(weight) -> list:
    """A `[..., in, out]` factor as the report's `[out, in]` matrix."""
    return [(weight, to_matrix(keras.ops.convert_to_numpy(weight)))]


def _dense_macs(layer: FactorizedDense, input_shape, output_shape) -> int:
    return dense_macs(int(input_shape[-1]), layer.units, (layer.rank,), output_shape)


def _conv_macs(layer: FactorizedConv2D, input_shape, output_shape) -> int:
    kernel_shape = (*layer.kernel_size, int(input_shape[-1]), layer.filters)
    return conv_macs(kernel_shape, layer.scheme, layer.ranks, input_shape, output_shape)


def _quantize_config(per_channel: bool):
    def config(layer) -> QuantizeConfig:
        # The weight quantizers carry the bits to the parts of the split (see QAT's `_split`).
        quantizer = WeightQuantizer(per_channel=per_channel)
        return QuantizeConfig(
            {w.name: quantizer for w in layer.weights if w.name != "bias"}, ActivationQuantizer()
        )

    return config


def register() -> None:
    """Registers FactorizedDense and FactorizedConv2D with the report and with QAT."""
    register_layer(
        FactorizedDense, lambda layer: _out_major(layer.u) + _out_major(layer.v), _dense_macs
    )
    register_layer(
        FactorizedConv2D,
        lambda layer: [pair for kernel in layer.kernels for pair in _out_major(kernel)],
        _conv_macs,
    )
    register_quantize_config(FactorizedDense, _quantize_config(per_channel=False))
    register_quantize_config(FactorizedConv2D, _quantize_config(per_channel=True))
    register_quantize_split(FactorizedDense, lambda layer: layer.to_layers())
    register_quantize_split(FactorizedConv2D, lambda layer: layer.to_layers())
