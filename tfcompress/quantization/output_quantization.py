"""`OutputQuantization`: how a `QuantizeWrapper` fake-quantizes its layer's output."""

from __future__ import annotations

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer, RangeTie
from tfcompress.quantization.registry import FIXED_RANGE_ACTIVATIONS


class OutputQuantization:
    """Fake-quantizes a layer's output, and the tensor before a split-off activation.

    Without a split activation the output is quantized once (after a fused
    ReLU/ReLU6, which is where TFLite takes the range). With one (see
    `split_activation`), the linear output is quantized, the activation runs,
    and its output is quantized again unless TFLite fixes its int8 range
    (softmax, sigmoid, tanh).

    Args:
        quantizer: The `ActivationQuantizer`, or None to leave the ranges to the
            converter (the activation still runs).
        activation: The split-off activation's name, or None.
        mean_window: For an average pool, the most values one mean averages: its halves
            round as TFLite's do (`pool_rounding.py`); 0 otherwise.

    Example:
        >>> from tfcompress.quantization import ActivationQuantizer
        >>> from tfcompress.quantization.output_quantization import OutputQuantization
        >>> output = OutputQuantization(ActivationQuantizer(), "softmax")
        >>> output.build(keras.layers.Layer())
        >>> y = output(keras.ops.ones((2, 4)), training=True)
    """

    def __init__(
        self, quantizer: ActivationQuantizer | None, activation: str | None, mean_window: int = 0
    ):
        self.quantizer = quantizer
        self.mean_window = mean_window
        self.activation_name = activation
        self.activation = keras.activations.get(activation) if activation else None
        self.output_ranges = self.pre_activation_ranges = None
        self.tie = RangeTie()  # the output's range, tied to others' (`shared_ranges.py`)

    def build(self, layer: keras.layers.Layer) -> None:
        """Creates the ranges on `layer`: `output_*`, then `pre_activation_*` with an activation."""
        if self.quantizer is None:
            return
        self.output_ranges = self.quantizer.build(None, layer, "output")
        if self.activation is not None:
            self.pre_activation_ranges = self.quantizer.build(None, layer, "pre_activation")
            if self.activation_name in FIXED_RANGE_ACTIVATIONS:
                self.output_ranges = None

    def __call__(self, outputs, training: bool):
        if self.activation is not None:
            if self.pre_activation_ranges is not None:
                outputs = self.quantizer(outputs, self.pre_activation_ranges, training)
            outputs = self.activation(outputs)
        if self.output_ranges is not None:
            outputs = keras.tree.map_structure(self._quantize_output(training), outputs)
        return outputs

    def _quantize_output(self, training: bool):
        return lambda t: self.quantizer.tied(
            t, self.output_ranges, self.tie, training, self.mean_window
        )
