"""The registry that tells the report how to read a layer: its kernels and its MACs.

Each entry maps a layer class to a `LayerSpec`:
* `kernels(layer)` returns `(weight, matrix)` pairs, where `matrix` is the
  kernel viewed as `[out, in]` (TFLite's layout): sparsity and structure are
  measured on it.
* `macs(layer, input_shape, output_shape)` returns the multiply-accumulates of
  one sample (shapes include the batch dimension, which is ignored).

MACs count the products of weight layers only; elementwise ops, pooling and
normalisation count 0 (on an int8 `.tflite` BatchNormalization is folded into
the convolution before it). A layer whose class is missing from the registry
still gets its parameters counted; its MACs are reported as unknown.
Lookup follows the class's MRO, so subclasses of registered layers inherit
their spec. Later techniques register their own layers with `register_layer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from tfcompress.core.weights import depthwise_to_matrix, to_matrix, transpose_kernel_to_matrix

Shape = tuple
KernelFn = Callable[[keras.layers.Layer], list[tuple[object, np.ndarray]]]
MacsFn = Callable[[keras.layers.Layer, Shape, Shape], int]


@dataclass(frozen=True)
class LayerSpec:
    """How the report reads one layer class (see the module docstring)."""

    kernels: KernelFn
    macs: MacsFn


_REGISTRY: dict[type, LayerSpec] = {}


def register_layer(layer_class: type, kernels: KernelFn, macs: MacsFn) -> None:
    """Registers (or replaces) how the report reads `layer_class`."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            f"`layer_class` must be a keras.layers.Layer subclass. Received: {layer_class!r}"
        )
    _REGISTRY[layer_class] = LayerSpec(kernels, macs)


def lookup(layer: keras.layers.Layer) -> LayerSpec | None:
    """The spec registered for the nearest class in `type(layer).__mro__`, or None."""
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


def _np(weight) -> np.ndarray:
    return keras.ops.convert_to_numpy(weight)


def _out_last(weight) -> list[tuple[object, np.ndarray]]:
    """Kernels stored `[..., in, out]` (Dense, ConvND): out-major, inputs flattened."""
    return [(weight, to_matrix(_np(weight)))]


def _depthwise(weight) -> list[tuple[object, np.ndarray]]:
    """`[*window, in, multiplier]` -> `[in * multiplier, window]` as TFLite orders channels."""
    return [(weight, depthwise_to_matrix(_np(weight)))]


def _spatial(shape: Shape) -> int:
    return math.prod(int(d) for d in shape[1:-1])


def _einsum_macs(layer, input_shape: Shape, output_shape: Shape) -> int:
    """Each output element sums over the kernel axes that the output does not keep."""
    operands, output = layer.equation.replace(" ", "").split("->")
    kernel_axes = operands.split(",")[1]
    contracted = [d for a, d in zip(kernel_axes, layer.kernel.shape) if a not in output]
    return math.prod(output_shape[1:]) * math.prod(contracted)


def _no_macs(layer, input_shape, output_shape) -> int:
    return 0


def _no_kernels(layer) -> list:
    return []


def _register_builtins() -> None:
    layers = keras.layers
    register_layer(
        layers.Dense,
        lambda layer: _out_last(layer.kernel),
        lambda layer, i, o: _spatial(o) * math.prod(layer.kernel.shape),
    )
    register_layer(
        layers.EinsumDense,
        lambda layer: _out_last(layer.kernel),
        _einsum_macs,
    )
    for conv in (layers.Conv1D, layers.Conv2D, layers.Conv3D):
        register_layer(
            conv,
            lambda layer: _out_last(layer.kernel),
            lambda layer, i, o: math.prod(o[1:]) * math.prod(layer.kernel.shape[:-1]),
        )
    for depthwise in (layers.DepthwiseConv1D, layers.DepthwiseConv2D):
        register_layer(
            depthwise,
            lambda layer: _depthwise(layer.kernel),
            lambda layer, i, o: math.prod(o[1:]) * math.prod(layer.kernel.shape[:-2]),
        )
    for separable in (layers.SeparableConv1D, layers.SeparableConv2D):
        register_layer(
            separable,
            lambda layer: _depthwise(layer.depthwise_kernel) + _out_last(layer.pointwise_kernel),
            lambda layer, i, o: (
                _spatial(o)
                * (
                    math.prod(layer.depthwise_kernel.shape)
                    + math.prod(layer.pointwise_kernel.shape)
                )
            ),
        )
    for transpose in (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose):
        register_layer(
            transpose,
            # Keras stores [*window, out, in]; TFLite's TRANSPOSE_CONV [out, *window, in].
            lambda layer: [(layer.kernel, transpose_kernel_to_matrix(_np(layer.kernel)))],
            lambda layer, i, o: _spatial(i) * math.prod(layer.kernel.shape),
        )
    register_layer(
        layers.Embedding, lambda layer: [(layer.embeddings, _np(layer.embeddings))], _no_macs
    )
    for recurrent in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        register_layer(
            recurrent,
            lambda layer: _out_last(layer.cell.kernel) + _out_last(layer.cell.recurrent_kernel),
            lambda layer, i, o: (
                int(i[1])
                * (
                    math.prod(layer.cell.kernel.shape)
                    + math.prod(layer.cell.recurrent_kernel.shape)
                )
            ),
        )
    for elementwise in (
        layers.BatchNormalization,
        layers.LayerNormalization,
        layers.GroupNormalization,
        layers.Normalization,
        layers.PReLU,
    ):
        register_layer(elementwise, _no_kernels, _no_macs)


_register_builtins()
