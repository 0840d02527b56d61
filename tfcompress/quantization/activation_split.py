"""Which activation a `QuantizeWrapper` takes out of its layer, to quantize the tensor before it."""

from __future__ import annotations

import keras

from tfcompress.quantization.registry import FUSED_ACTIVATIONS, activation_name


def split_activation(layer: keras.layers.Layer) -> tuple[keras.layers.Layer, str | None]:
    """The layer to run and the activation to run after it.

    TFLite fuses ReLU and ReLU6 into CONV_2D / FULLY_CONNECTED, so those stay
    inside the layer (as does "linear"). Any other activation is a separate
    int8 op whose input needs its own range: the layer comes back as a linear
    copy (same weights when built; `layer` itself is untouched) with the
    activation's name.

    Example:
        >>> from tfcompress.quantization.activation_split import split_activation
        >>> inner, activation = split_activation(keras.layers.Dense(4, activation="softmax"))
        >>> activation, inner.get_config()["activation"]
        ('softmax', 'linear')
    """
    name = activation_name(layer)
    if name is None or name in FUSED_ACTIVATIONS:
        return layer, None
    return _linear_copy(layer), name


def _linear_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    copy = layer.__class__.from_config({**layer.get_config(), "activation": "linear"})
    if layer.built:
        copy.build_from_config(layer.get_build_config())
        copy.set_weights(layer.get_weights())
    return copy
