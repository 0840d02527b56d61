"""`QuantizeLayer`: fake-quantizes a model input so the converter gives it an int8 range."""

from __future__ import annotations

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer, RangeTie
from tfcompress.reporting.layer_specs import register_layer


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizeLayer(keras.layers.Layer):
    """Fake-quantizes its input with an `ActivationQuantizer`.

    `quantize_apply` puts one after each float model input: without a range on
    the input, TFLite would run the first layer in float.

    Args:
        quantizer: The input's quantizer (default `ActivationQuantizer()`).
        **kwargs: Base layer arguments.

    Example:
        >>> from tfcompress.quantization import QuantizeLayer
        >>> x = keras.Input((28, 28, 1))
        >>> y = QuantizeLayer()(x)
        >>> y.shape
        (None, 28, 28, 1)
    """

    def __init__(self, quantizer: ActivationQuantizer | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        quantizer = quantizer or ActivationQuantizer()
        if not isinstance(quantizer, ActivationQuantizer):
            raise TypeError(
                f"Layer {self.name!r}: `quantizer` must be an ActivationQuantizer. "
                f"Received: {quantizer!r}"
            )
        self.quantizer = quantizer
        self.tie = RangeTie()  # the range, tied to other tensors' (`shared_ranges.py`)

    def build(self, input_shape):
        self.ranges = self.quantizer.build(input_shape, self, "input")
        self.built = True

    def call(self, inputs, training=None):
        return self.quantizer.tied(inputs, self.ranges, self.tie, bool(training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "quantizer": keras.saving.serialize_keras_object(self.quantizer),
        }


register_layer(QuantizeLayer, lambda layer: [], lambda layer, inputs, outputs: 0)
