"""What `strip_quantization` turns a `QuantizeWrapper` into: its plain layer, quantized weights."""

from __future__ import annotations

import keras


def stripped_layer(
    layer: keras.layers.Layer,
    values: dict[int, object],
    activation: str | None = None,
    folded_bias=None,
) -> keras.layers.Layer:
    """A new plain copy of `layer` holding `values` in place of its weights.

    Args:
        layer: The built layer a wrapper ran (linear when its activation was
            split off).
        values: Weight values by `id` of `layer`'s variable (the fake-quantized
            weights); the other weights are copied as they are.
        activation: The split-off activation to put back, or None.
        folded_bias: The bias of a folded batch norm, or None; the copy then
            has a bias (a new one comes after the kernel) holding it.

    Example:
        >>> from tfcompress.quantization.stripping import stripped_layer
        >>> dense = keras.layers.Dense(2, use_bias=False)
        >>> dense.build((None, 3))
        >>> plain = stripped_layer(dense, {id(dense.kernel): keras.ops.zeros((3, 2))}, "softmax")
        >>> plain.get_config()["activation"], float(keras.ops.sum(plain.kernel))
        ('softmax', 0.0)
    """
    config = layer.get_config()
    if activation is not None:
        config["activation"] = activation
    if folded_bias is not None:
        config["use_bias"] = True
    plain = layer.__class__.from_config(config)
    plain.build_from_config(layer.get_build_config())
    values = {k: keras.ops.convert_to_numpy(v) for k, v in values.items()}
    for old, new in zip(layer.weights, plain.weights):  # a folded-in bias comes last
        new.assign(values.get(id(old), keras.ops.convert_to_numpy(old)))
    if folded_bias is not None:
        plain.bias.assign(keras.ops.convert_to_numpy(folded_bias))
    return plain
