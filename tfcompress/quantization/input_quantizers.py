"""The rebuilt QAT model's inputs, each float one quantized once (state of `quantize_apply`)."""

from __future__ import annotations

import keras

from tfcompress.quantization.quantize_layer import QuantizeLayer
from tfcompress.quantization.scheme import QuantizeScheme


class InputQuantizers:
    """New inputs like `model`'s, and the one `QuantizeLayer` each float input gets.

    The int8 model begins where a model input is quantized: every layer that
    reads a float model input (or a float preprocessing output) reads it through
    one shared `QuantizeLayer`, named `quantize_layer`, `quantize_layer_1`, ...

    Args:
        model: The model whose inputs are copied.
        scheme: Gives the activation quantizer of each `QuantizeLayer`.
    """

    def __init__(self, model: keras.Model, scheme: QuantizeScheme):
        self.scheme = scheme
        given = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
        self.tensors = keras.tree.map_structure(
            lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), given
        )
        self._inputs = {id(t) for t in keras.tree.flatten(self.tensors)}
        self._quantized: dict[int, keras.KerasTensor] = {}  # id(tensor) -> quantized tensor

    def quantize(self, tensor: keras.KerasTensor) -> keras.KerasTensor:
        """`tensor` through its `QuantizeLayer` (made on the first call, shared afterwards)."""
        if id(tensor) not in self._quantized:
            suffix = f"_{len(self._quantized)}" if self._quantized else ""
            name = f"quantize_layer{suffix}"
            layer = QuantizeLayer(self.scheme.activation_quantizer(), name=name)
            self._quantized[id(tensor)] = layer(tensor)
        return self._quantized[id(tensor)]

    def add_float_input(self, tensor: keras.KerasTensor) -> keras.KerasTensor:
        """Counts `tensor` (float preprocessing of a model input) as a float model input."""
        self._inputs.add(id(tensor))
        return tensor

    def quantize_input(self, value):
        """`value` quantized when it is a float model input, else unchanged."""
        is_input = isinstance(value, keras.KerasTensor) and id(value) in self._inputs
        return self.quantize(value) if is_input and "float" in str(value.dtype) else value
