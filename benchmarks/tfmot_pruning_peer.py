"""The tfmot side of benchmarks/pruning.py, run in its own process (tfmot needs tf_keras).

Reads a job (JSON) and the starting weights and data order (NPZ) written by the
main benchmark, prunes with tfmot on the same schedule, data order and epochs,
and writes the stripped model's dynamic-range and int8 `.tflite` files plus a
JSON of step times and sparsity. Never imported by the tfcompress package.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as K


def build(name: str) -> K.Model:
    if name == "lenet_300_100":
        layers = [
            K.layers.Flatten(input_shape=(28, 28, 1)),
            K.layers.Dense(300, activation="relu"),
            K.layers.Dense(100, activation="relu"),
            K.layers.Dense(10),
        ]
    else:
        layers = [
            K.layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
            K.layers.Conv2D(64, 3, activation="relu"),
            K.layers.MaxPooling2D(2),
            K.layers.Dropout(0.25),
            K.layers.Flatten(),
            K.layers.Dense(128, activation="relu"),
            K.layers.Dropout(0.5),
            K.layers.Dense(10),
        ]
    return K.Sequential(layers)


class StepTimer(K.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def fit(model, x, y, callbacks) -> float:
    model.compile(K.optimizers.Adam(1e-3), K.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = StepTimer()
    model.fit(
        x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=[*callbacks, timer]
    )
    return float(np.median(timer.times[5:]))


def main(job_path: str) -> None:
    job = json.load(open(job_path))
    arrays = np.load(job["npz"])
    weights = [arrays[f"w{i}"] for i in range(int(arrays["n_weights"]))]
    x, y, calib = arrays["x"], arrays["y"], arrays["calibration"]

    epoch = int(arrays["epoch"])
    results = {"runs": []}
    for run in job["runs"]:
        plain = build(job["model"])  # adjacent baseline: one plain epoch right before
        plain.set_weights(weights)
        plain_step = fit(plain, x[:epoch], y[:epoch], [])
        model = build(job["model"])
        model.set_weights(weights)
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            0.0, run["sparsity"], 0, run["end_step"], frequency=run["frequency"]
        )
        pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        step = fit(pruned, x, y, [tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        paths = {}
        for mode in ("dynamic", "int8"):
            converter = tf.lite.TFLiteConverter.from_keras_model(stripped)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if mode == "int8":
                converter.representative_dataset = lambda: ([s[None]] for s in calib)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            paths[mode] = f"{job['out']}_{run['sparsity']}_{mode}.tflite"
            open(paths[mode], "wb").write(converter.convert())
        kernels = [w for w in stripped.weights if "kernel" in w.name]
        zeros = sum(int(np.sum(k.numpy() == 0)) for k in kernels)
        results["runs"].append(
            {
                "sparsity_target": run["sparsity"],
                "step_s": step,
                "plain_step_s": plain_step,
                "achieved_sparsity": zeros / sum(int(np.prod(k.shape)) for k in kernels),
                "tflite": paths,
            }
        )
    json.dump(results, open(job["result"], "w"))


if __name__ == "__main__":
    main(sys.argv[1])
