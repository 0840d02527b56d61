"""Which weights of a layer are prunable: the `PrunableLayer` protocol and one registry."""

from __future__ import annotations

from collections.abc import Callable

import keras

PrunableFn = Callable[[keras.layers.Layer], list]


class PrunableLayer:
    """Mixin for custom layers: say which weights pruning may zero.

    Example:
        >>> from tfcompress.pruning import PrunableLayer
        >>> class MyLayer(keras.layers.Layer, PrunableLayer):
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1], 8))
        ...     def call(self, x):
        ...         return x @ self.w
        ...     def get_prunable_weights(self):
        ...         return [self.w]
        >>> model = keras.Sequential([keras.Input((16,)), MyLayer()])
        >>> pruned = tfcompress.prune_low_magnitude(model, tfcompress.ConstantSparsity(0.5, 0))
        >>> type(pruned.layers[0]).__name__
        'PruneLowMagnitude'
    """

    def get_prunable_weights(self) -> list:
        raise NotImplementedError("PrunableLayer subclasses return their prunable weights.")


_REGISTRY: dict[type, PrunableFn] = {}


def register_prunable(layer_class: type, prunable_weights: PrunableFn) -> None:
    """Registers how to find the prunable weights of a built-in or third-party layer class.

    `prunable_weights(layer)` returns the weights to prune (an empty list for a
    layer that has none, which then passes through untouched).
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            f"`layer_class` must be a keras.layers.Layer subclass. Received: {layer_class!r}"
        )
    _REGISTRY[layer_class] = prunable_weights


def is_prunable_layer(layer: keras.layers.Layer) -> bool:
    """True when pruning knows the layer's class (protocol or registry)."""
    return isinstance(layer, PrunableLayer) or any(c in _REGISTRY for c in type(layer).__mro__)


def prunable_weights(layer: keras.layers.Layer) -> list | None:
    """The layer's prunable weights, or None when the layer is not known to pruning."""
    if isinstance(layer, PrunableLayer):
        return list(layer.get_prunable_weights())
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls](layer)
    return None


def _kernels_by_name(layer: keras.layers.Layer) -> list:
    """Weights whose name is `kernel` (MultiHeadAttention's projections, for example)."""
    return [w for w in layer.weights if w.name == "kernel"]


def _register_builtins() -> None:
    layers = keras.layers
    kernel = (
        layers.Dense,
        layers.EinsumDense,
        layers.Conv1D,
        layers.Conv2D,
        layers.Conv3D,
        layers.Conv1DTranspose,
        layers.Conv2DTranspose,
        layers.Conv3DTranspose,
        layers.DepthwiseConv1D,
        layers.DepthwiseConv2D,
    )
    for cls in kernel:
        register_prunable(cls, lambda layer: [layer.kernel])
    for cls in (layers.SeparableConv1D, layers.SeparableConv2D):
        register_prunable(cls, lambda layer: [layer.depthwise_kernel, layer.pointwise_kernel])
    register_prunable(layers.Embedding, lambda layer: [layer.embeddings])
    register_prunable(layers.MultiHeadAttention, _kernels_by_name)
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        register_prunable(cls, lambda layer: [layer.cell.kernel, layer.cell.recurrent_kernel])
    nothing = (
        layers.BatchNormalization,
        layers.LayerNormalization,
        layers.GroupNormalization,
        layers.Normalization,
        layers.PReLU,
    )
    for cls in nothing:
        register_prunable(cls, lambda layer: [])


_register_builtins()
