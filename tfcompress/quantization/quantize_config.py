"""`QuantizeConfig`: which weights of a layer are fake-quantized, and how its output is."""

from __future__ import annotations

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.weight_quantizer import WeightQuantizer


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizeConfig:
    """How `QuantizeWrapper` quantizes one layer.

    Args:
        weight_quantizers: Weight name -> `WeightQuantizer`. Every variable of
            the layer (sub-layers included) whose `name` is a key is quantized
            with that quantizer, so `{"kernel": ...}` covers all four
            projections of a MultiHeadAttention.
        output_quantizer: `ActivationQuantizer` for the layer's output, or None
            to leave it to the converter (ops such as MaxPooling and Reshape keep
            their input's range; softmax, sigmoid and tanh have fixed ranges).

    A config with no weights and no output quantizer is a pass-through: such
    layers are not wrapped at all.

    Example:
        >>> from tfcompress.quantization import (
        ...     ActivationQuantizer, QuantizeConfig, WeightQuantizer)
        >>> config = QuantizeConfig({"kernel": WeightQuantizer(bits=4)}, ActivationQuantizer())
        >>> dense = tfcompress.quantize_annotate_layer(keras.layers.Dense(8), config)
        >>> qat = tfcompress.quantize_apply(keras.Sequential([keras.Input((16,)), dense]))
        >>> [type(layer).__name__ for layer in qat.layers]
        ['InputLayer', 'QuantizeLayer', 'QuantizeWrapper']
    """

    def __init__(
        self,
        weight_quantizers: dict[str, WeightQuantizer] | None = None,
        output_quantizer: ActivationQuantizer | None = None,
    ):
        weight_quantizers = dict(weight_quantizers or {})
        for name, quantizer in weight_quantizers.items():
            if isinstance(quantizer, dict):
                weight_quantizers[name] = quantizer = keras.saving.deserialize_keras_object(
                    quantizer
                )
            if not isinstance(quantizer, WeightQuantizer):
                raise TypeError(
                    f"`weight_quantizers[{name!r}]` must be a WeightQuantizer. "
                    f"Received: {quantizer!r}"
                )
        if isinstance(output_quantizer, dict):
            output_quantizer = keras.saving.deserialize_keras_object(output_quantizer)
        if output_quantizer is not None and not isinstance(output_quantizer, ActivationQuantizer):
            raise TypeError(
                "`output_quantizer` must be an ActivationQuantizer or None. "
                f"Received: {output_quantizer!r}"
            )
        self.weight_quantizers = weight_quantizers
        self.output_quantizer = output_quantizer

    @property
    def is_passthrough(self) -> bool:
        return not self.weight_quantizers and self.output_quantizer is None

    def with_weight_bits(self, bits: int) -> QuantizeConfig:
        """A copy whose weight quantizers use `bits`."""
        return QuantizeConfig(
            {name: q.with_bits(bits) for name, q in self.weight_quantizers.items()},
            self.output_quantizer,
        )

    def get_config(self) -> dict:
        return {
            "weight_quantizers": {
                name: keras.saving.serialize_keras_object(q)
                for name, q in self.weight_quantizers.items()
            },
            "output_quantizer": keras.saving.serialize_keras_object(self.output_quantizer),
        }

    @classmethod
    def from_config(cls, config: dict) -> QuantizeConfig:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, QuantizeConfig) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        return (
            f"QuantizeConfig(weight_quantizers={self.weight_quantizers!r}, "
            f"output_quantizer={self.output_quantizer!r})"
        )
