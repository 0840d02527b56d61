"""The tfmot side of benchmarks/compress.py, run in its own process (tfmot needs tf_keras).

tfmot's best manual equivalent of a compression recipe: its uniform magnitude
pruning (every layer to the same sparsity, PolynomialDecay) followed by its
pruning-preserving QAT (`Default8BitPrunePreserveQuantizeScheme`, 8-bit: tfmot
exports no 4-bit weights to TFLite) and int8 export from the QAT ranges. Reads a
job (JSON) and the starting weights and data (NPZ) written by the main
benchmark; writes one `.tflite` per run plus a JSON index. Never imported by the
tfcompress package.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as K

from benchmarks.tfmot_pruning_peer import build


def fit(model: K.Model, x, y, epochs: int, lr: float, callbacks=()) -> None:
    model.compile(K.optimizers.Adam(lr), K.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=list(callbacks))


def main(job_path: str) -> None:
    job = json.load(open(job_path))
    arrays = np.load(job["npz"])
    weights = [arrays[f"w{i}"] for i in range(int(arrays["n_weights"]))]
    x, y = arrays["x"], arrays["y"]
    steps = job["prune_epochs"] * -(-len(x) // 64)
    runs = []
    for sparsity in job["sparsities"]:
        K.utils.set_random_seed(job["seed"])
        model = build(job["model"])
        model.set_weights(weights)
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            0.0, sparsity, 0, int(job["end_fraction"] * steps), frequency=job["frequency"]
        )
        pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        fit(pruned, x, y, job["prune_epochs"], 1e-3, [tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        quantization = tfmot.quantization.keras
        pqat = quantization.quantize_apply(
            quantization.quantize_annotate_model(stripped),
            tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
        )
        fit(pqat, x, y, job["qat_epochs"], 1e-4)
        converter = tf.lite.TFLiteConverter.from_keras_model(pqat)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path = f"{job['out']}_{sparsity}.tflite"
        open(path, "wb").write(converter.convert())
        runs.append({"sparsity": sparsity, "tflite": path})
    json.dump({"runs": runs}, open(job["result"], "w"))


if __name__ == "__main__":
    main(sys.argv[1])
