"""Keeps a wrapped first layer's `input_shape=` argument, as tfmot's wrappers do."""

import keras


def keep_input_shape(inner, wrapped):
    """`wrapped`, carrying `inner`'s `input_shape=` so a Sequential builds from it.

    `keras.Sequential` reads the argument from its first layer's
    `_input_shape_arg`; a wrapper around a layer given `input_shape=` must carry
    it for `Sequential([wrap(Dense(20, input_shape=(20,))), ...])` to build.
    A list of layers and the list of their wrappers are paired up.
    """
    if isinstance(inner, list):
        return [keep_input_shape(a, b) for a, b in zip(inner, wrapped)]
    if isinstance(inner, keras.layers.Layer) and isinstance(wrapped, keras.layers.Layer):
        shape = getattr(inner, "_input_shape_arg", None)
        if shape is not None:
            wrapped._input_shape_arg = shape
    return wrapped
