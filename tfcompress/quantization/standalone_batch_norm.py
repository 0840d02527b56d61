"""A BatchNormalization with no convolution before it (DenseNet's BN -> ReLU -> Conv), in int8.

TFLite runs such a batch norm as a float MUL and ADD between a DEQUANTIZE and
a QUANTIZE. Over channels-last images it is a per-channel scale and offset,
which is what a 1x1 DepthwiseConv2D computes; QAT folds the BN into an
identity one (`BatchNormFolding`), so the int8 model runs one
DEPTHWISE_CONV_2D with per-channel int8 weights instead.
"""

from __future__ import annotations

import keras
import numpy as np


def runs_as_depthwise(layer: keras.layers.Layer) -> bool:
    """True for a built BatchNormalization of the last axis of 4-D (image) inputs: one QAT
    runs as a 1x1 depthwise convolution when no convolution before it absorbs it."""
    if not isinstance(layer, keras.layers.BatchNormalization):
        return False
    batch_norm = layer
    build = batch_norm.get_build_config() if batch_norm.built else None
    if not build:
        return False
    rank = len(build["input_shape"])
    axis = batch_norm.get_config()["axis"]
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return rank == 4 and [a % rank for a in axes] == [3]


def identity_depthwise(batch_norm: keras.layers.BatchNormalization) -> keras.layers.Layer:
    """A built 1x1 DepthwiseConv2D with a fixed kernel of ones, named like `batch_norm`."""
    shape = batch_norm.get_build_config()["input_shape"]
    depthwise = keras.layers.DepthwiseConv2D(
        1, use_bias=False, trainable=False, name=batch_norm.name
    )
    depthwise.build(shape)
    depthwise.kernel.assign(np.ones(depthwise.kernel.shape, "float32"))
    return depthwise
