"""LeNet-300-100: the fully connected net of the pruning literature."""

from __future__ import annotations

import keras


def lenet_300_100(input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Builds LeNet-300-100 (Flatten, Dense 300, Dense 100, Dense logits).

    Args:
        input_shape: Shape of one input sample.
        num_classes: Number of output logits.

    Returns:
        An uncompiled functional `keras.Model` that outputs logits.

    Example:
        >>> tfcompress.models.lenet_300_100().count_params()
        266610
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(300, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="lenet_300_100")
