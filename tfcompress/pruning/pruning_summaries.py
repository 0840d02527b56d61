"""`PruningSummaries`: per-layer sparsity and threshold as TensorBoard scalars."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfcompress.pruning.update_pruning_step import collect_wrappers

# TensorBoard shows a summary as a scalar when its metadata names the "scalars" plugin; writing
# it with the core `tf.summary.write` avoids needing the tensorboard package at run time.
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
).SerializeToString()


def _scalar(tag: str, value: float) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALAR)


class PruningSummaries(keras.callbacks.Callback):
    """Writes each pruned weight's sparsity and threshold to TensorBoard.

    Scalars are named `<layer>/sparsity_<i>` and `<layer>/threshold_<i>` (the
    smallest importance kept at the last mask update), logged against the
    pruning step every `update_freq` batches and at the end of every epoch.

    Args:
        log_dir: Folder of the TensorBoard event files.
        update_freq: Batches between writes (>= 1).

    Example:
        >>> import os
        >>> from tfcompress.pruning import PruningSummaries
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])
        >>> pruned = tfcompress.prune_low_magnitude(model, tfcompress.ConstantSparsity(0.5, 0))
        >>> pruned.compile("adam", "sparse_categorical_crossentropy")
        >>> history = pruned.fit(
        ...     data.x_train[:64], data.y_train[:64], epochs=1, verbose=0,
        ...     callbacks=[tfcompress.UpdatePruningStep(), PruningSummaries("logs")])
        >>> len(os.listdir("logs")) > 0
        True
    """

    def __init__(self, log_dir: str | os.PathLike, update_freq: int = 100):
        super().__init__()
        if not isinstance(update_freq, int) or update_freq < 1:
            raise ValueError(
                f"`update_freq` must be a positive integer. Received: update_freq={update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq

    def on_train_begin(self, logs=None):
        self._wrappers = collect_wrappers(self.model)
        if not self._wrappers:
            raise ValueError(
                f"PruningSummaries found no pruning wrappers in model {self.model.name!r}."
            )
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def _write(self) -> None:
        step = int(keras.ops.convert_to_numpy(self._wrappers[0].pruning_step))
        with self._writer.as_default(step=step):
            for wrapper in self._wrappers:
                name = wrapper.layer.name
                for i, (weight, threshold) in enumerate(
                    zip(wrapper.prunable_weights, wrapper.thresholds)
                ):
                    value = keras.ops.convert_to_numpy(weight)
                    _scalar(f"{name}/sparsity_{i}", 1 - np.count_nonzero(value) / value.size)
                    _scalar(f"{name}/threshold_{i}", float(threshold.numpy()))
        self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.update_freq == 0:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        self._write()

    def on_train_end(self, logs=None):
        self._writer.close()
