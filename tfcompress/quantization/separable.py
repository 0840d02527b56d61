"""SeparableConv2D as DepthwiseConv2D + 1x1 Conv2D, so QAT can range the tensor between them.

TFLite runs a separable convolution as DEPTHWISE_CONV_2D then CONV_2D; both
run in int8 only when the tensor between them has a quantization range,
which a single Keras layer cannot give it.
"""

from __future__ import annotations

import keras


def split_separable(layer: keras.layers.SeparableConv2D) -> list[keras.layers.Layer]:
    """A DepthwiseConv2D (no activation, no bias) and a 1x1 Conv2D that compute `layer`.

    `layer` must be built; both parts are built and hold its weights.
    """
    c = layer.get_config()
    depthwise = keras.layers.DepthwiseConv2D(
        c["kernel_size"],
        strides=c["strides"],
        padding=c["padding"],
        depth_multiplier=c["depth_multiplier"],
        data_format=c["data_format"],
        dilation_rate=c["dilation_rate"],
        use_bias=False,
        name=f"{layer.name}_depthwise",
    )
    pointwise = keras.layers.Conv2D(
        c["filters"],
        1,
        data_format=c["data_format"],
        activation=c["activation"],
        use_bias=c["use_bias"],
        name=f"{layer.name}_pointwise",
    )
    input_shape = layer.get_build_config()["input_shape"]
    depthwise.build(input_shape)
    depthwise.kernel.assign(layer.depthwise_kernel)
    pointwise.build(depthwise.compute_output_shape(input_shape))
    pointwise.kernel.assign(layer.pointwise_kernel)
    if c["use_bias"]:
        pointwise.bias.assign(layer.bias)
    return [depthwise, pointwise]
