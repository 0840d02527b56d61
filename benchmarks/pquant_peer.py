"""The PQuantML side of benchmarks/peers.py, run in its own process and venv.

PQuantML (`pip install pquant-ml`, Keras 3) trains with its own layers
(PQDense, PQConv2d) that prune and fixed-point quantize. Reads a job (JSON: the
pretrained `.keras` model, the pre-shuffled training data, epochs, sparsity),
replaces the layers with `add_compression_layers`, trains with its
`train_model` loop (PDP pruning, reaching the target sparsity in the last
training epoch, 8-bit fixed-point weights: its default config), applies its
final compression and writes the
compressed kernels and biases of each Dense/Conv2D (NPZ, in layer order) plus
its own Keras accuracy (with its activation quantizers) to a JSON. PQuantML has
no TFLite export; benchmarks/peers.py copies these weights into the plain model
and exports it. Never imported by the tfcompress package.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata

import keras
import numpy as np
import pquant
from pquant.core.keras.layers import PQConv2d, PQDense


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    data = np.load(job["npz"])
    model = keras.models.load_model(job["model"], compile=False)
    config = pquant.pdp_config()
    config.pruning_parameters.sparsity = job["sparsity"]
    # PDP's sparsity grows by `epsilon` of the target per epoch (its default 0.015 needs
    # 67 epochs): reach the target in the last training epoch.
    config.pruning_parameters.epsilon = 1.0 / job["epochs"]
    config.training_parameters.pretraining_epochs = 0
    config.training_parameters.epochs = job["epochs"]
    config.training_parameters.fine_tuning_epochs = job["fine_tuning_epochs"]
    model = pquant.add_compression_layers(model, config, (1, *data["x"].shape[1:]))
    model.compile(
        keras.optimizers.Adam(job["lr"]),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    def train(model, epoch=None, **kwargs):
        model.fit(data["x"], data["y"], batch_size=job["batch"], epochs=1, verbose=0)

    def validate(model, epoch=None, **kwargs):
        pass

    start = time.perf_counter()
    model = pquant.train_model(model, config, train, validate)
    seconds = time.perf_counter() - start
    pquant.apply_final_compression(model)
    logits = model.predict(data["x_test"], batch_size=256, verbose=0)
    accuracy = float(np.mean(logits.argmax(-1) == data["y_test"]))
    arrays = {}
    compressed = [layer for layer in model.layers if isinstance(layer, (PQDense, PQConv2d))]
    for i, layer in enumerate(compressed):
        arrays[f"kernel_{i}"] = keras.ops.convert_to_numpy(layer.kernel)
        arrays[f"bias_{i}"] = keras.ops.convert_to_numpy(layer.bias)
    np.savez(job["weights"], **arrays)
    result = {
        "keras_accuracy": accuracy,
        "train_seconds": seconds,
        "versions": {p: metadata.version(p) for p in ("pquant-ml", "hgq2", "keras")},
        "method": "PDP pruning + 8-bit fixed-point weights (pquant.pdp_config defaults)",
    }
    with open(job["result"], "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
