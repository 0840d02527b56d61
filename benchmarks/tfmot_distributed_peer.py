"""The tfmot side of benchmarks/distributed.py: one worker process (tfmot needs tf_keras).

Trains a tf_keras model, plain or pruned by tfmot's `prune_low_magnitude` (50%, masks every
4 steps, as tfcompress's cells), under TensorFlow's own `tf.distribute.MultiWorkerMirroredStrategy`
(`TF_CONFIG` set by the caller), times each step after a warm-up epoch and writes the same
report as the tfcompress workers. Never imported by the tfcompress package.

Usage (by benchmarks/distributed.py): python -m benchmarks.tfmot_distributed_peer
    MODEL TECHNIQUE EPOCHS GLOBAL_BATCH DATA.npz FOLDER
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as K

from benchmarks.tfmot_pruning_peer import build


def peak_rss_mib() -> float:
    """This process's peak RSS (`VmHWM`: since its exec, unlike `getrusage`, which keeps
    the forking parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    raise RuntimeError("no VmHWM in /proc/self/status")


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
    times = []

    class StepTimer(K.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks)  # warm-up: tracing
    times.clear()
    model.fit(dataset, epochs=int(epochs), verbose=0, callbacks=[*callbacks, StepTimer()])
    index = int(strategy.cluster_resolver.task_id or 0)
    report = {
        "times": times,
        "variable_bytes": sum(int(np.prod(v.shape)) * v.dtype.size for v in model.variables),
        "peak_rss_mib": peak_rss_mib(),
    }
    path = os.path.join(folder, f"worker_{index}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(report, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main(*sys.argv[1:])
