"""`cluster_weights` keeping `input_shape=`, and `cluster_scope`."""

from __future__ import annotations

import contextlib

import keras

from tfcompress import clustering
from tfcompress.compat.tfmot.input_shape import keep_input_shape


def cluster_weights(
    to_cluster: keras.layers.Layer | list | keras.Model, number_of_clusters: int, **kwargs
):
    """`tfcompress.cluster_weights`; a wrapped layer keeps its `input_shape=`.

    Takes tfmot's `number_of_clusters`, `cluster_centroids_init`,
    `preserve_sparsity` and `cluster_per_channel`.
    """
    clustered = clustering.cluster_weights(to_cluster, number_of_clusters, **kwargs)
    return keep_input_shape(to_cluster, clustered)


@contextlib.contextmanager
def cluster_scope():
    """Makes the clustering wrapper known while loading a model, as tfmot's scope does.

    It is registered as serializable, so `.keras` files load without it.
    """
    with keras.saving.custom_object_scope({"ClusterWeights": clustering.ClusterWeights}):
        yield
