"""The tfmot side of benchmarks/distributed.py: one worker process (tfmot needs tf_keras).

Trains a tf_keras model, plain or pruned by tfmot's `prune_low_magnitude` (50%, masks every
4 steps, as tfcompress's cells), under TensorFlow's own `tf.distribute.MultiWorkerMirroredStrategy`
(`TF_CONFIG` set by the caller), times each step after a warm-up epoch and writes the same
report as the tfcompress workers. Never imported by the tfcompress package.

Usage (by benchmarks/distributed.py): python -m benchmarks.tfmot_distributed_peer
    MODEL TECHNIQUE EPOCHS GLOBAL_BATCH DATA.npz FOLDER
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as K

from benchmarks.tfmot_pruning_peer import build
from benchmarks.worker_timing import timed_fit, write_worker_report


def main(model_name, technique, epochs, global_batch, data, folder) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    arrays = np.load(data)
    dataset = tf.data.Dataset.from_tensor_slices((arrays["x"], arrays["y"]))
    dataset = dataset.batch(int(global_batch), drop_remainder=True)
    K.utils.set_random_seed(0)
    callbacks = []
    with strategy.scope():
        if model_name == "resnet50":
            model = K.applications.ResNet50(
                weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
            )
        else:
            model = build("lenet_300_100" if model_name == "lenet" else model_name)
        if technique == "tfmot_pruned":
            schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=4)
            model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
            callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
        model.compile(
            K.optimizers.Adam(1e-3), K.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
    times = timed_fit(model, dataset, int(epochs), callbacks, K.callbacks.Callback)
    index = int(strategy.cluster_resolver.task_id or 0)
    size = sum(int(np.prod(v.shape)) * v.dtype.size for v in model.variables)
    write_worker_report(folder, index, times, size)


if __name__ == "__main__":
    main(*sys.argv[1:])
