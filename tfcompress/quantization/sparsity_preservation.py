"""`SparsityPreservation`: pruning-preserving QAT keeps zero weights at exactly zero."""

from __future__ import annotations

import keras
import tensorflow as tf


class SparsityPreservation:
    """A fixed 0/1 mask per weight, taken from the weights' zeros when created.

    Multiplying each weight by its mask before quantizing keeps a pruned
    model's zeros, and so its block or N:M structure, through QAT and
    conversion (the gradient of a masked weight is zero too).

    Args:
        layer: The layer that owns the masks (`sparsity_mask_{i}`, not trainable).
        weights: The weights to preserve, in order; mask `i` belongs to `weights[i]`.

    Example:
        >>> from tfcompress.quantization.sparsity_preservation import SparsityPreservation
        >>> dense = keras.layers.Dense(2)
        >>> dense.build((None, 3))
        >>> _ = dense.kernel.assign([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
        >>> sparsity = SparsityPreservation(keras.layers.Layer(), [dense.kernel])
        >>> sparsity.masked(0, keras.ops.ones((3, 2))).numpy().tolist()
        [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, layer: keras.layers.Layer, weights: list[keras.Variable]):
        self.weights = list(weights)
        self.masks = [
            layer.add_weight(
                name=f"sparsity_mask_{i}",
                shape=w.shape,
                trainable=False,
                dtype="float32",
                initializer=keras.initializers.Constant(keras.ops.convert_to_numpy(w) != 0),
            )
            for i, w in enumerate(self.weights)
        ]

    def capture(self) -> None:
        """Takes the masks again from the weights' current zeros (after weights were copied in)."""
        for mask, weight in zip(self.masks, self.weights):
            mask.assign(keras.ops.cast(keras.ops.not_equal(weight, 0), "float32"))

    def masked(self, i: int, value) -> tf.Tensor:
        """`value` (weight `i` as QAT trains it) with the weight's zeros kept at zero."""
        return value * self.masks[i].value
