"""The small CNN: conv32-conv64-pool-dense128, as in Keras' MNIST example."""

from __future__ import annotations

import keras


def small_cnn(
    input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, dropout: bool = True
) -> keras.Model:
    """Builds conv32 - conv64 - maxpool - dense128 - logits.

    On 28x28 inputs the `fc1` Dense layer is 9216x128 and holds 98% of the
    1.2 M parameters, which is what pruning and factorization go after.

    Args:
        input_shape: Shape of one input sample, `(height, width, channels)`.
        num_classes: Number of output logits.
        dropout: Whether to add the two Dropout layers (0.25 after pooling, 0.5 after `fc1`).

    Returns:
        An uncompiled functional `keras.Model` that outputs logits.

    Example:
        >>> tfcompress.models.small_cnn().count_params()
        1199882
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(0.25, name="drop1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="fc1")(x)
    if dropout:
        x = keras.layers.Dropout(0.5, name="drop2")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_cnn")
