"""Every registered layer kind clusters and trains; custom layers opt in by protocol or registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.clustering import (
    ClusterableLayer,
    ClusterWeights,
    cluster_weights,
    register_clusterable,
    strip_clustering,
)
from tfcompress.clustering.clusterable import clusterable_weights

rng = np.random.default_rng(0)
layers = keras.layers

# kind -> (layer, input shape, channel axes of each clustered weight)
CASES = {
    "Dense": (lambda: layers.Dense(6), (2, 12), [(1,)]),
    "Embedding": (lambda: layers.Embedding(40, 8), (2, 5), [(1,)]),
    "Conv1D": (lambda: layers.Conv1D(4, 3), (2, 8, 3), [(2,)]),
    "Conv2D": (lambda: layers.Conv2D(4, 3), (2, 6, 6, 3), [(3,)]),
    "Conv3D": (lambda: layers.Conv3D(4, 2), (2, 4, 4, 4, 2), [(4,)]),
    "Conv1DTranspose": (lambda: layers.Conv1DTranspose(4, 3), (2, 6, 3), [(1,)]),
    "Conv2DTranspose": (lambda: layers.Conv2DTranspose(4, 3), (2, 5, 5, 3), [(2,)]),
    "DepthwiseConv1D": (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2), (2, 8, 3), [(1, 2)]),
    "DepthwiseConv2D": (
        lambda: layers.DepthwiseConv2D(3, depth_multiplier=2),
        (2, 6, 6, 3),
        [(2, 3)],
    ),
    "SeparableConv2D": (lambda: layers.SeparableConv2D(4, 3), (2, 6, 6, 3), [(2, 3), (3,)]),
}


def per_channel_counts(value, axes) -> int:
    moved = np.moveaxis(value, axes, tuple(range(len(axes))))
    channels = int(np.prod(moved.shape[: len(axes)]))
    return max(len(np.unique(row)) for row in moved.reshape(channels, -1))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_registered_layer_clusters_per_channel_and_trains(kind):
    make, shape, axes = CASES[kind]
    x = rng.integers(0, 40, shape) if kind == "Embedding" else rng.random(shape).astype("float32")
    wrapper = ClusterWeights(make(), 3, cluster_per_channel=True)
    wrapper(x)
    assert wrapper.channel_axes == axes
    start = [c.numpy().copy() for c in wrapper.centroids]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(wrapper(x, training=True) - 1.0))
    variables = wrapper.trainable_variables
    # The clustered weights train too, straight through the clustering.
    assert all(any(v is w for v in variables) for w in wrapper.clustered_variables)
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads)
    keras.optimizers.SGD(0.1).apply(grads, variables)
    assert all(not np.array_equal(c.numpy(), s) for c, s in zip(wrapper.centroids, start))
    for value, channel_axes in zip(wrapper.clustered_weights(), axes):
        assert per_channel_counts(value, channel_axes) <= 3
    plain = strip_clustering(wrapper)
    assert type(plain) is type(wrapper.layer)
    np.testing.assert_allclose(plain(x), wrapper(x), atol=1e-5)


def test_biases_are_not_clustered():
    wrapper = ClusterWeights(layers.Conv2D(4, 3, bias_initializer="random_normal"), 2)
    wrapper.build((None, 6, 6, 3))
    assert [w.name for w in wrapper.clustered_variables] == ["kernel"]
    np.testing.assert_array_equal(wrapper.stripped_weights()[1], wrapper.layer.bias.numpy())
    assert wrapper.layer.bias.trainable


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class Project(layers.Layer, ClusterableLayer):
    """A `[out, in]` weight: its output channels are axis 0."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(6, input_shape[-1]), name="w")

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.transpose(self.w))

    def get_clusterable_weights(self):
        return [self.w]

    def get_clusterable_channel_axes(self):
        return [(0,)]


def test_custom_layer_through_the_protocol():
    inputs = keras.Input((10,))
    model = keras.Model(inputs, layers.Dense(3)(Project(name="proj")(inputs)))
    clustered = cluster_weights(model, 4, cluster_per_channel=True)
    wrapper = clustered.get_layer("cluster_proj")
    assert wrapper.channel_axes == [(0,)] and wrapper.centroids[0].shape == (6, 4)
    assert per_channel_counts(wrapper.clustered_weights()[0], (0,)) <= 4


def test_custom_layer_through_the_registry():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1], 4), name="scale")
            self.offset = self.add_weight(shape=(4,), name="offset")

        def call(self, x):
            return keras.ops.matmul(x, self.scale) + self.offset

    register_clusterable(Scale, lambda layer: [layer.scale])
    wrapper = cluster_weights(Scale(), 3)
    wrapper.build((None, 8))
    assert [w.name for w in wrapper.clustered_variables] == ["scale"]
    assert wrapper.channel_axes == [None]  # a matrix: per tensor by default
    register_clusterable(Scale, lambda layer: [layer.scale, layer.offset], channel_axes=[(1,)])
    with pytest.raises(ValueError, match=r"2 clusterable weights but 1 channel axes"):
        clusterable_weights(wrapper.layer)


def test_layers_with_nothing_to_cluster():
    norm = layers.BatchNormalization()
    norm.build((None, 4))
    assert clusterable_weights(norm) == []
    assert clusterable_weights(layers.Add()) is None  # unknown, weightless: passes through
    with pytest.raises(TypeError, match="keras.layers.Layer subclass"):
        register_clusterable(int, lambda layer: [])
