"""How a weight reads as an `[out, in]` matrix, the layout TFLite and our int8 kernels use.

The last axis of a Keras kernel is the output axis; all others flatten into the
input axis, in Keras' order, which is TFLite's: a Dense `[in, out]` kernel becomes
TFLite's FULLY_CONNECTED `[out, in]`, a Conv2D `[kh, kw, in, out]` kernel becomes
`[out, kh * kw * in]`, the CONV_2D filter `[out, kh, kw, in]` flattened. Pruning
blocks, structure detection and the kernels' block density are all measured on
this view.
"""

from __future__ import annotations

import math

import numpy as np

# TFLite ops whose weight stores the output axis first, and those that store it last.
_TFLITE_OUT_FIRST = ("FULLY_CONNECTED", "CONV_2D", "TRANSPOSE_CONV")
_TFLITE_OUT_LAST = ("DEPTHWISE_CONV_2D", "CONV_3D")  # [1, kh, kw, channels], [kd, kh, kw, in, out]


def matrix_shape(shape: tuple) -> tuple[int, int]:
    """`(out, in)`: the shape `to_matrix` gives a weight of `shape`."""
    return int(shape[-1]), math.prod(int(d) for d in shape[:-1])


def to_matrix(value: np.ndarray) -> np.ndarray:
    """`[..., out]` weight (Dense, ConvND, a factor) -> `[out, in]` matrix."""
    return value.reshape(-1, value.shape[-1]).T


def from_matrix(matrix: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of `to_matrix`: `[out, in]` back to the weight's `shape`."""
    return matrix.T.reshape(shape)


def depthwise_to_matrix(value: np.ndarray) -> np.ndarray:
    """Keras depthwise `[*window, in, multiplier]` -> `[in * multiplier, window]`.

    Rows are the output channels in TFLite's order (input channel major), columns
    the taps of the window.
    """
    window = math.prod(value.shape[:-2])
    return value.reshape(window, -1).T


def transpose_kernel_to_matrix(value: np.ndarray) -> np.ndarray:
    """Keras ConvNDTranspose `[*window, out, in]` -> `[out, window * in]`.

    TFLite's TRANSPOSE_CONV stores the filter `[out, *window, in]`; this is it flattened.
    """
    return np.moveaxis(value, -2, 0).reshape(value.shape[-2], -1)


def tflite_to_matrix(op: str, value: np.ndarray) -> np.ndarray:
    """The weight of a TFLite `op` as `[out, in]`.

    FULLY_CONNECTED, CONV_2D and TRANSPOSE_CONV store the output axis first;
    DEPTHWISE_CONV_2D and CONV_3D store it last, as Keras does.

    Raises:
        ValueError: for an op not listed above.
    """
    if op in _TFLITE_OUT_FIRST:
        return value.reshape(value.shape[0], -1)
    if op in _TFLITE_OUT_LAST:
        return to_matrix(value)
    raise ValueError(
        f"`op` must be one of {_TFLITE_OUT_FIRST + _TFLITE_OUT_LAST}. Received: op={op!r}"
    )
