"""A tiny MobileNet-style net: depthwise-separable blocks, BatchNorm, ReLU6, a residual Add."""

from __future__ import annotations

import keras


def _conv_bn(x, filters: int, kernel: int, strides: int, name: str, relu: bool = True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _depthwise_bn(x, strides: int, name: str):
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(x)


def tiny_mobilenet(
    input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, width: int = 16
) -> keras.Model:
    """Builds a tiny MobileNet-style classifier.

    Stem conv (stride 2) -> inverted-residual block with a residual `Add`
    (1x1 expand, 3x3 depthwise, 1x1 project) -> depthwise-separable block
    (stride 2) -> global average pooling -> Dense logits. Every conv is followed
    by BatchNormalization (momentum 0.9, so short trainings settle its
    statistics), and ReLU6 where MobileNet has it.

    Args:
        input_shape: Shape of one input sample, `(height, width, channels)`.
        num_classes: Number of output logits.
        width: Channels of the stem; the later stages use 2x and 4x.

    Returns:
        An uncompiled functional `keras.Model` that outputs logits.

    Example:
        >>> model = tfcompress.models.tiny_mobilenet()
        >>> model.output_shape
        (None, 10)
    """
    if width < 1:
        raise ValueError(f"`width` must be a positive integer. Received: width={width}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, width, 3, 2, "stem")
    shortcut = x
    y = _conv_bn(x, 2 * width, 1, 1, "block1_expand")
    y = _depthwise_bn(y, 1, "block1")
    y = _conv_bn(y, width, 1, 1, "block1_project", relu=False)
    x = keras.layers.Add(name="block1_add")([shortcut, y])
    x = _depthwise_bn(x, 2, "block2")
    x = _conv_bn(x, 4 * width, 1, 1, "block2_pointwise")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_mobilenet")
