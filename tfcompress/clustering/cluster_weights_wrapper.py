"""`ClusterWeights`: the wrapper that shares each clustered weight's values among k centroids."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfcompress.clustering.centroids import CentroidInitialization, cluster_array
from tfcompress.clustering.clusterable import clusterable_weights, is_clusterable_layer


def check_number_of_clusters(value, where: str = "") -> int:
    """`value` as an int, or a ValueError when it is not an integer >= 2."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"{where}`number_of_clusters` must be an integer >= 2. "
            f"Received: number_of_clusters={value!r}"
        )
    return int(value)


def centroid_initialization(value, where: str = "") -> CentroidInitialization:
    """`value` as a `CentroidInitialization` (its strings are accepted too)."""
    try:
        return CentroidInitialization(value)
    except ValueError:
        allowed = [init.value for init in CentroidInitialization]
        raise ValueError(
            f"{where}`cluster_centroids_init` must be a CentroidInitialization or one of "
            f"{allowed}. Received: cluster_centroids_init={value!r}"
        ) from None


@keras.saving.register_keras_serializable(package="tfcompress")
class ClusterWeights(keras.layers.Wrapper):
    """Wraps a layer so that each of its clusterable weights takes at most k distinct values.

    Deep Compression-style weight sharing. When built, the wrapper clusters
    each clusterable weight of the wrapped layer (from its current values: wrap
    a trained layer) into a trainable `centroids` variable, `[k]`, or
    `[channels, k]` per channel, and a non-trainable int32 `indices` variable
    of the weight's shape. `call` runs the wrapped layer with each clustered
    weight replaced by `centroids[indices]`: each centroid's gradient is the
    sum of its members' gradients. In training the wrapped layer's own weights
    train too, through a straight-through estimator (their gradient is the
    clustered weight's), and before each step every weight is re-assigned to
    its nearest centroid, so weights can move between clusters as tfmot's
    clustering lets them. Other weights (biases) train as usual.
    `strip_clustering` writes the clustered values back into a plain layer.

    Per-channel clustering gives each output channel its own k centroids: a
    Dense unit, a Conv filter, a DepthwiseConv2D `(in, multiplier)` channel.
    With `preserve_sparsity=True` centroid 0 is the constant 0, holding
    exactly the weights that are zero at build time (the zero mask); the other
    `k - 1` centroids cluster the non-zero weights and never take over a zero,
    so a pruned layer keeps its sparsity, exactly.

    Args:
        layer: The layer to cluster (a built-in one, or one implementing
            `ClusterableLayer` or registered with `register_clusterable`).
        number_of_clusters: k, the number of centroids per weight (or per
            channel); at least 2.
        cluster_centroids_init: A `CentroidInitialization` or one of
            `"linear"`, `"kmeans++"`, `"density"`.
        preserve_sparsity: Keep zero weights exactly zero (one of the k
            centroids is the fixed 0).
        cluster_per_channel: True: each channel has its own centroids; False:
            one set per weight tensor; None (auto): per channel for
            convolution kernels (rank 3 or more) whose channels hold more than
            `number_of_clusters` weights, per tensor otherwise.
        **kwargs: Base layer arguments.

    Input shape:
        That of the wrapped layer.

    Output shape:
        That of the wrapped layer.

    Example:
        >>> from tfcompress.clustering import ClusterWeights
        >>> dense = ClusterWeights(keras.layers.Dense(64), number_of_clusters=16)
        >>> y = dense(np.ones((2, 32), "float32"))
        >>> len(np.unique(dense.clustered_weights()[0])) <= 16
        True
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        number_of_clusters: int,
        cluster_centroids_init: CentroidInitialization | str = (
            CentroidInitialization.KMEANS_PLUS_PLUS
        ),
        preserve_sparsity: bool = False,
        cluster_per_channel: bool | None = None,
        **kwargs,
    ):
        if isinstance(layer, ClusterWeights):
            raise ValueError(
                f"Layer {layer.name!r} is already clustered; call `strip_clustering` first to "
                "cluster it again."
            )
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"`layer` must be a keras.layers.Layer. Received: type {type(layer).__name__}"
            )
        if not is_clusterable_layer(layer):
            raise ValueError(
                f"Layer {layer.name!r} of type {type(layer).__name__} is not supported by "
                "clustering. Make the class implement `tfcompress.clustering.ClusterableLayer` "
                "(`get_clusterable_weights()`), or register it with "
                f"`tfcompress.clustering.register_clusterable({type(layer).__name__}, fn)`."
            )
        where = f"Layer {layer.name!r}: "
        self.number_of_clusters = check_number_of_clusters(number_of_clusters, where)
        self.cluster_centroids_init = centroid_initialization(cluster_centroids_init, where)
        if cluster_per_channel not in (None, True, False):
            raise ValueError(
                f"{where}`cluster_per_channel` must be True, False or None (auto). "
                f"Received: cluster_per_channel={cluster_per_channel!r}"
            )
        self.cluster_per_channel = cluster_per_channel
        self.preserve_sparsity = bool(preserve_sparsity)
        kwargs.setdefault("name", f"cluster_{layer.name}")
        super().__init__(layer, **kwargs)
        if layer.built:
            self._plan()  # a number of clusters that does not fit fails here, not at build

    def _plan(self) -> list[tuple]:
        """Each clusterable weight with its channel axes (None: one set of centroids)."""
        k = self.number_of_clusters
        plan = []
        for weight, axes in clusterable_weights(self.layer):
            shape = tuple(weight.shape)
            axes = tuple(sorted(a % len(shape) for a in axes))
            channels = math.prod(shape[a] for a in axes)
            size = math.prod(shape)
            per_channel = self.cluster_per_channel
            if per_channel is None:
                per_channel = len(shape) >= 3 and size // channels > k
            count = size // channels if per_channel else size
            if k > count:
                scope = f"in each of the {channels} channels of" if per_channel else "in"
                raise ValueError(
                    f"Layer {self.layer.name!r}: `number_of_clusters` is larger than the "
                    f"{count} weights {scope} {weight.path!r} (shape {shape}); use at most "
                    f"{count}, or skip the layer. Received: number_of_clusters={k}"
                )
            plan.append((weight, axes if per_channel else None))
        return plan

    def build(self, input_shape=None):
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except TypeError as err:  # e.g. a build that takes several shapes
                raise ValueError(
                    f"Layer {self.layer.name!r} cannot be built from one input shape "
                    f"({err}); build it before wrapping it for clustering."
                ) from err
        positions = {id(w): i for i, w in enumerate(self.layer.weights)}
        self._positions, self._channel_axes = [], []
        self.centroids, self.indices = [], []
        for i, (weight, axes) in enumerate(self._plan()):
            centroids, indices = cluster_array(
                keras.ops.convert_to_numpy(weight),
                self.number_of_clusters,
                self.cluster_centroids_init,
                self.preserve_sparsity,
                axes,
            )
            self.centroids.append(
                self.add_weight(
                    name=f"centroids_{i}",
                    shape=centroids.shape,
                    initializer="zeros",
                    dtype=weight.dtype,
                )
            )
            self.indices.append(
                self.add_weight(
                    name=f"indices_{i}",
                    shape=indices.shape,
                    initializer="zeros",
                    dtype="int32",
                    trainable=False,
                )
            )
            self.centroids[i].assign(centroids)
            self.indices[i].assign(indices)
            self._positions.append(positions[id(weight)])
            self._channel_axes.append(axes)
        self.built = True

    def _clustered(self, i: int):
        """Weight `i` as its centroids gathered by its indices."""
        centroids, indices = self.centroids[i], self.indices[i]
        if self.preserve_sparsity:  # centroid 0 is the constant 0: no gradient, never drifts
            centroids = keras.ops.concatenate(
                [keras.ops.zeros_like(centroids[..., :1]), centroids[..., 1:]], axis=-1
            )
        axes = self._channel_axes[i]
        if axes is None:
            return keras.ops.take(centroids, indices)
        # Per channel: index the flattened [channels, k] centroids at channel * k + index.
        view = [n if a in axes else 1 for a, n in enumerate(indices.shape)]
        first = keras.ops.arange(math.prod(view), dtype="int32") * self.number_of_clusters
        # Full shape, not broadcast: on TensorFlow `ops.add` takes a `(1, 1, C, 1)` operand for
        # a bias of axis 1 when that axis also has size C.
        first = keras.ops.broadcast_to(keras.ops.reshape(first, view), indices.shape)
        return keras.ops.take(keras.ops.reshape(centroids, (-1,)), keras.ops.add(indices, first))

    def _nearest(self, i: int, weight) -> tf.Tensor:
        """Index of each weight's nearest centroid (a zero of a preserved mask keeps 0)."""
        centroids = self.centroids[i].value
        axes = self._channel_axes[i]
        shape = tf.shape(weight)
        if axes is None:
            rows, centroids, perm = tf.reshape(weight, [1, -1]), centroids[None], None
        else:
            perm = list(axes) + [a for a in range(len(weight.shape)) if a not in axes]
            rows = tf.reshape(tf.transpose(weight, perm), [tf.shape(centroids)[0], -1])
        first = 1 if self.preserve_sparsity else 0  # centroid 0 is the fixed zero
        candidates = centroids[:, first:]
        order = tf.argsort(candidates, axis=-1)
        ordered = tf.gather(candidates, order, batch_dims=1)
        middles = (ordered[:, 1:] + ordered[:, :-1]) / 2
        nearest = tf.gather(order, tf.searchsorted(middles, rows), batch_dims=1) + first
        if perm is None:
            nearest = tf.reshape(nearest, shape)
        else:
            moved = tf.reshape(nearest, tf.gather(shape, perm))
            nearest = tf.transpose(moved, tf.math.invert_permutation(perm))
        if self.preserve_sparsity:
            nearest = tf.where(self.indices[i].value == 0, 0, nearest)
        return tf.cast(nearest, "int32")

    def call(self, inputs, training=None, **kwargs):
        weights = self.layer.weights
        mapping = []
        for i, position in enumerate(self._positions):
            weight = weights[position]
            if training:
                self.indices[i].assign(self._nearest(i, weight.value))
            value = self._clustered(i)
            if training:  # straight through: the weight gets the clustered weight's gradient
                through = weight.value - tf.stop_gradient(weight.value)
                if self.preserve_sparsity:
                    through = through * tf.cast(self.indices[i].value != 0, through.dtype)
                value = value + through
            mapping.append((weight, value))
        with keras.StatelessScope(state_mapping=mapping):
            return self.layer(inputs, training=training, **kwargs)

    @property
    def channel_axes(self) -> list:
        """The channel axes of each clustered weight; None where it is clustered per tensor."""
        return list(self._channel_axes)

    @property
    def clustered_variables(self) -> list:
        """The wrapped layer's variables that are clustered (trained straight through)."""
        weights = self.layer.weights
        return [weights[p] for p in self._positions]

    def clustered_weights(self) -> list[np.ndarray]:
        """The current clustered value of each clustered variable: `centroids[indices]`."""
        return [keras.ops.convert_to_numpy(self._clustered(i)) for i in range(len(self.indices))]

    def stripped_weights(self) -> list[np.ndarray]:
        """The wrapped layer's `get_weights()`, with the clustered values in place."""
        values = self.layer.get_weights()
        for position, value in zip(self._positions, self.clustered_weights()):
            values[position] = value
        return values

    def get_config(self) -> dict:
        config = super().get_config()
        return {
            **config,
            "number_of_clusters": self.number_of_clusters,
            "cluster_centroids_init": self.cluster_centroids_init.value,
            "preserve_sparsity": self.preserve_sparsity,
            "cluster_per_channel": self.cluster_per_channel,
        }
