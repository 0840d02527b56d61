"""`MultiWorkerMirroredStrategy`: TensorFlow's, with the `reduce` that Keras 3's `fit` needs."""

from __future__ import annotations

import tensorflow as tf


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy` that Keras 3's `model.fit` can train on.

    Keras 3 (TensorFlow backend) calls `strategy.reduce` in two ways that TensorFlow's
    multi-worker strategy rejects once there are two workers or more (keras-team/keras#20585):

    * `fit`, `evaluate` and `predict` begin by reducing the first batch, the whole
      `(x, y, sample_weight)` structure, in one `reduce("MEAN", batch, axis=None)` call, to
      build the model symbolically. `MirroredStrategy` maps `reduce` over a structure;
      the multi-worker strategy passes the tuple to its collective ops, which fail with
      "Attempt to convert a value (PerReplica:{...}) ... to a Tensor".
    * Every training and test step then reduces the scalar losses and metrics with
      `reduce("MEAN", value, axis=0)`, which fails on a scalar ("Invalid reduction
      dimension 0 for input with 0 dimensions").

    This subclass accepts both: it reduces a structure leaf by leaf, and a scalar across
    replicas only (`axis=None`, the mean Keras means). Every other call goes to TensorFlow
    unchanged, so construct it with the same arguments, `TF_CONFIG` included, and use it
    wherever TensorFlow's is used. The first batch is still averaged across workers, so its
    global size must split evenly over the replicas (96 over 3, not 128): unequal shards fail
    in TensorFlow with "Shape mismatch in the collective instance".

    Example:
        >>> strategy = tfcompress.distribute.MultiWorkerMirroredStrategy()  # 1 worker here
        >>> with strategy.scope():
        ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        ...     model.compile("sgd", "mse")
        >>> data = tf.data.Dataset.from_tensor_slices((np.ones((8, 4)), np.zeros((8, 2)))).batch(4)
        >>> history = model.fit(data, epochs=1, verbose=0)
        >>> total, mean = strategy.reduce("MEAN", (tf.constant(1.0), tf.constant(2.0)), axis=0)
        >>> float(total), float(mean)
        (1.0, 2.0)
    """

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def reduce_one(leaf):
            local = self.experimental_local_results(leaf)[0]
            scalar = axis is not None and tf.TensorShape(getattr(local, "shape", ())).rank == 0
            return parent.reduce(reduce_op, leaf, None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)
