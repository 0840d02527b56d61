"""The tfmot side of benchmarks/quantization.py, run in its own process (tfmot needs tf_keras).

Reads a job (JSON) and the pretrained weights, data orders and test set (NPZ)
written by the main benchmark. Starting from those weights it makes the same
variants as the tfcompress side with tfmot's public API: post-training int8,
QAT int8, clustering (16 clusters, k-means++), and pruning (80%, unstructured)
followed by pruning-preserving QAT, each fine-tuned on the same data in the
same order for the same number of steps. It writes each variant's `.tflite`
and a JSON with the paths and the Keras accuracies; the main process measures
every `.tflite`. Never imported by the tfcompress package.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as K


def build(name: str) -> K.Model:
    """The same architectures as tfcompress.models, in tf_keras (weights come from the NPZ)."""
    if name == "lenet_300_100":
        layers = [
            K.layers.Flatten(input_shape=(28, 28, 1)),
            K.layers.Dense(300, activation="relu"),
            K.layers.Dense(100, activation="relu"),
            K.layers.Dense(10),
        ]
    elif name == "small_cnn":
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
    else:
        raise ValueError(f"No tf_keras twin for model {name!r}")
    return K.Sequential(layers)


def fit(model: K.Model, x, y, lr: float, callbacks=()) -> None:
    model.compile(K.optimizers.Adam(lr), K.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=list(callbacks))


def accuracy(model: K.Model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(-1) == y))


def convert(model: K.Model, mode: str, calibration=None) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":  # dynamic, QAT int8 (ranges from fake-quant), PTQ int8
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "ptq_int8":
        converter.representative_dataset = lambda: ([s[None]] for s in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def main(job_path: str) -> None:
    job = json.load(open(job_path))
    arrays = np.load(job["npz"])
    weights = [arrays[f"w{i}"] for i in range(int(arrays["n_weights"]))]
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    x_ft, y_ft = arrays["x_finetune"], arrays["y_finetune"]
    lr = job["finetune_lr"]
    K.utils.set_random_seed(job["seed"])

    def fresh() -> K.Model:
        model = build(job["model"])
        model.set_weights(weights)
        return model

    rows = {}

    def save(key: str, model: K.Model, mode: str, calibration=None) -> None:
        path = os.path.join(job["out"], f"{job['model']}_{job['seed']}_peer_{key}.tflite")
        with open(path, "wb") as f:
            f.write(convert(model, mode, calibration))
        rows[key] = {"tflite": path, "keras_accuracy": accuracy(model, x_test, y_test)}

    base = fresh()
    save("float", base, "float32")
    save("ptq_int8", base, "ptq_int8", arrays["calibration"])

    qat = tfmot.quantization.keras.quantize_model(fresh())
    fit(qat, x_ft, y_ft, lr)
    save("qat_int8", qat, "qat_int8")

    clustering = tfmot.clustering.keras
    clustered = clustering.cluster_weights(
        fresh(),
        number_of_clusters=job["clusters"],
        cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    fit(clustered, x_ft, y_ft, lr)
    stripped = clustering.strip_clustering(clustered)
    save("cluster_float32", stripped, "float32")
    save("cluster_dynamic", stripped, "dynamic")

    sparsity = tfmot.sparsity.keras
    schedule = sparsity.PolynomialDecay(
        0.0, job["sparsity"], 0, job["prune_end_step"], frequency=job["prune_frequency"]
    )
    pruned = sparsity.prune_low_magnitude(fresh(), pruning_schedule=schedule)
    x_prune, y_prune = arrays["x_prune"], arrays["y_prune"]
    fit(pruned, x_prune, y_prune, job["prune_lr"], [sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(pruned)
    quantization = tfmot.quantization.keras
    pqat = quantization.quantize_apply(
        quantization.quantize_annotate_model(stripped),
        tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
    )
    fit(pqat, x_ft, y_ft, lr)
    save("pqat_int8", pqat, "qat_int8")

    json.dump({"rows": rows}, open(job["result"], "w"))


if __name__ == "__main__":
    main(sys.argv[1])
