"""`ClusterPreservation`: clustering-preserving QAT trains shared centroids, not each weight."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class ClusterPreservation:
    """Each weight as a table of its distinct values (centroids) and an index per element.

    QAT then trains the centroids (the weight itself is made non-trainable), so
    the number of distinct values of a clustered model never grows, through
    training and int8 conversion.

    Args:
        layer: The layer that owns the variables: `centroids_{i}` (trainable,
            float32) and `cluster_indices_{i}` (int32, not trainable).
        weights: The weights to preserve, in order.
        num_centroids: The centroid count per weight; None counts each weight's
            distinct values. When a count differs from the weight's (a layer
            re-created from a config, whose saved values load later), the
            variables start at zero.

    Example:
        >>> from tfcompress.quantization.cluster_preservation import ClusterPreservation
        >>> dense = keras.layers.Dense(2)
        >>> dense.build((None, 2))
        >>> _ = dense.kernel.assign([[0.5, -1.0], [0.5, 0.5]])
        >>> clusters = ClusterPreservation(keras.layers.Layer(), [dense.kernel])
        >>> clusters.num_centroids, clusters.centroids[0].numpy().tolist()
        ([2], [-1.0, 0.5])
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        weights: list[keras.Variable],
        num_centroids: list[int] | None = None,
    ):
        values = [keras.ops.convert_to_numpy(w) for w in weights]
        if num_centroids is None:
            num_centroids = [int(np.unique(v).size) for v in values]
        self.num_centroids = list(num_centroids)
        self.centroids, self.indices = [], []
        for i, (w, value, n) in enumerate(zip(weights, values, self.num_centroids)):
            unique, inverse = np.unique(value, return_inverse=True)
            if unique.size != n:  # re-created from a config: the saved values load later
                unique, inverse = np.zeros(n), np.zeros(value.shape)
            self.centroids.append(
                layer.add_weight(
                    name=f"centroids_{i}",
                    shape=(n,),
                    dtype="float32",
                    initializer=keras.initializers.Constant(unique),
                )
            )
            self.indices.append(
                layer.add_weight(
                    name=f"cluster_indices_{i}",
                    shape=w.shape,
                    dtype="int32",
                    trainable=False,
                    initializer=keras.initializers.Constant(inverse.reshape(value.shape)),
                )
            )
            w.trainable = False  # the centroids train instead

    def clustered(self, i: int) -> tf.Tensor:
        """Weight `i` rebuilt from its centroids (what QAT trains in its place)."""
        return tf.gather(self.centroids[i].value, self.indices[i].value)
