"""Which weights of a layer are clustered, and along which axes its channels run.

The `ClusterableLayer` protocol for custom layers, and one registry for built-in
and third-party layer classes. A weight's channel axes matter only for
per-channel clustering: each index along them is one channel with its own
centroids (the last axis, the output channels, unless said otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

ClusterableFn = Callable[[keras.layers.Layer], list]
LAST_AXIS = (-1,)


class ClusterableLayer:
    """Mixin for custom layers: say which weights clustering may share values in.

    Override `get_clusterable_channel_axes` when a weight's output channels are
    not its last axis.

    Example:
        >>> from tfcompress.clustering import ClusterableLayer
        >>> class MyLayer(keras.layers.Layer, ClusterableLayer):
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1], 8))
        ...     def call(self, x):
        ...         return x @ self.w
        ...     def get_clusterable_weights(self):
        ...         return [self.w]
        >>> model = keras.Sequential([keras.Input((4,)), MyLayer()])
        >>> clustered = tfcompress.cluster_weights(model, number_of_clusters=4)
        >>> wrapper = clustered.layers[0]
        >>> len(np.unique(wrapper.clustered_weights()[0])) <= 4
        True
    """

    def get_clusterable_weights(self) -> list:
        raise NotImplementedError("ClusterableLayer subclasses return their clusterable weights.")

    def get_clusterable_channel_axes(self) -> list[tuple[int, ...]]:
        """The channel axes of each clusterable weight (default: the last axis)."""
        return [LAST_AXIS] * len(self.get_clusterable_weights())


_REGISTRY: dict[type, tuple[ClusterableFn, Sequence[tuple[int, ...]] | None]] = {}


def register_clusterable(
    layer_class: type,
    clusterable_weights: ClusterableFn,
    channel_axes: Sequence[tuple[int, ...]] | None = None,
) -> None:
    """Registers how to find the clusterable weights of a built-in or third-party layer class.

    Args:
        layer_class: A `keras.layers.Layer` subclass (its subclasses inherit the entry).
        clusterable_weights: `fn(layer)` returning the weights to cluster (an
            empty list for a layer with none, which then passes through).
        channel_axes: The channel axes of each returned weight, e.g.
            `[(-2, -1)]` for a depthwise kernel `[kh, kw, in, multiplier]`;
            None: the last axis of every weight.

    Example:
        >>> from tfcompress.clustering import register_clusterable
        >>> class Scale(keras.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.kernel = self.add_weight(shape=(input_shape[-1],))
        ...     def call(self, x):
        ...         return x * self.kernel
        >>> register_clusterable(Scale, lambda layer: [layer.kernel])
        >>> model = keras.Sequential([keras.Input((16,)), Scale()])
        >>> clustered = tfcompress.cluster_weights(model, number_of_clusters=4)
        >>> type(clustered.layers[0]).__name__
        'ClusterWeights'
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            f"`layer_class` must be a keras.layers.Layer subclass. Received: {layer_class!r}"
        )
    _REGISTRY[layer_class] = (clusterable_weights, channel_axes)


def is_clusterable_layer(layer: keras.layers.Layer) -> bool:
    """True when clustering knows the layer's class (protocol or registry)."""
    return isinstance(layer, ClusterableLayer) or any(c in _REGISTRY for c in type(layer).__mro__)


def clusterable_weights(layer: keras.layers.Layer) -> list[tuple] | None:
    """`(weight, channel_axes)` for each clusterable weight, or None for an unknown layer."""
    if isinstance(layer, ClusterableLayer):
        weights = list(layer.get_clusterable_weights())
        axes = list(layer.get_clusterable_channel_axes())
    else:
        entry = next((_REGISTRY[c] for c in type(layer).__mro__ if c in _REGISTRY), None)
        if entry is None:
            return None
        weights = list(entry[0](layer))
        axes = list(entry[1]) if entry[1] is not None else [LAST_AXIS] * len(weights)
    if len(axes) != len(weights):
        raise ValueError(
            f"Layer {layer.name!r}: {len(weights)} clusterable weights but {len(axes)} "
            f"channel axes. Received: channel_axes={axes}"
        )
    return list(zip(weights, [tuple(a) for a in axes]))


def _register_builtins() -> None:
    layers = keras.layers
    for cls in (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D):
        register_clusterable(cls, lambda layer: [layer.kernel])
    for cls in (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose):
        # kernel [..., filters, in]: the output channels are the second to last axis.
        register_clusterable(cls, lambda layer: [layer.kernel], channel_axes=[(-2,)])
    for cls in (layers.DepthwiseConv1D, layers.DepthwiseConv2D):
        # kernel [..., in, multiplier]: one output channel per (in, multiplier) pair.
        register_clusterable(cls, lambda layer: [layer.kernel], channel_axes=[(-2, -1)])
    for cls in (layers.SeparableConv1D, layers.SeparableConv2D):
        register_clusterable(
            cls,
            lambda layer: [layer.depthwise_kernel, layer.pointwise_kernel],
            channel_axes=[(-2, -1), (-1,)],
        )
    register_clusterable(layers.Embedding, lambda layer: [layer.embeddings])
    nothing = (
        layers.BatchNormalization,
        layers.LayerNormalization,
        layers.GroupNormalization,
        layers.Normalization,
    )
    for cls in nothing:
        register_clusterable(cls, lambda layer: [])


_register_builtins()
