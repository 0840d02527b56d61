"""Export modes on LeNet-300-100 and the small CNN (MNIST-5k), side by side with a plain
`tf.lite.TFLiteConverter.from_keras_model` call.

Run from the repository root: python -m benchmarks.export_modes [--epochs N] [--latency_runs N]
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf

import tfcompress as tc
from benchmarks.harness import write_results


def train(builder, data, epochs: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = builder()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=2)
    return model


def plain_converter(model: keras.Model) -> bytes:
    """The reference: what a user gets from TFLiteConverter with no options."""
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latency_runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = tc.datasets.load_mnist5k(seed=args.seed)
    test = (data.x_test, data.y_test)
    records, rows = [], []
    for builder in (tc.models.lenet_300_100, tc.models.small_cnn):
        model = train(builder, data, args.epochs, args.seed)
        reference = model.predict(data.x_test, verbose=0)
        variants = [("TFLiteConverter (plain)", plain_converter(model))]
        for mode in tc.export.MODES:
            calibration = data.x_train[:200] if mode in ("int8", "int16x8") else None
            content = tc.export_tflite(model, mode=mode, representative_data=calibration)
            variants.append((f"tfcompress {mode}", content))
        for label, content in variants:
            result = tc.report(tflite=content, data=test, latency_runs=args.latency_runs)
            runner = tc.TFLiteModel(content)
            outputs = runner.predict(data.x_test)
            s = result.summary
            record = {
                "model": model.name,
                "export": label,
                "accuracy": s["tflite_accuracy"],
                "keras_accuracy": float(np.mean(reference.argmax(-1) == data.y_test)),
                "top1_agreement": float(np.mean(outputs.argmax(-1) == reference.argmax(-1))),
                "max_abs_error": float(np.abs(outputs - reference).max()),
                "bytes": s["tflite_bytes"],
                "gzip_bytes": s["gzip_bytes"],
                "latency_median_ms": s["latency_ms"],
                "latency_p90_ms": s["latency_p90_ms"],
            }
            records.append(record)
            rows.append(
                [
                    model.name,
                    label,
                    f"{record['accuracy']:.3f}",
                    f"{record['top1_agreement']:.3f}",
                    f"{record['max_abs_error']:.4f}",
                    f"{record['bytes']:,}",
                    f"{record['gzip_bytes']:,}",
                    f"{record['latency_median_ms']:.4f}",
                    f"{record['latency_p90_ms']:.4f}",
                ]
            )
    headers = [
        "model",
        "export",
        "accuracy",
        "top-1 agreement",
        "max abs error",
        "bytes",
        "gzip bytes",
        "latency median (ms)",
        "latency p90 (ms)",
    ]
    notes = (
        f"MNIST-5k (4,000 train / 1,000 test, seed {args.seed}), {args.epochs} epochs, batch 64. "
        "Accuracy of the `.tflite` on the 1,000 test images (0.001 = one image); agreement and "
        "max abs error are against the Keras model's logits. Latency: interpreter `invoke()` on "
        f"one image, 1 thread, default XNNPACK, median and p90 of {args.latency_runs} runs after "
        "10 warm-up runs, all variants measured in one process one after the other. int16x8 runs "
        "on TFLite's reference kernels (XNNPACK has no int16x8 path), hence its latency."
    )
    paths = write_results("export_modes", "Export modes", headers, rows, records, notes)
    print(open(paths[1], encoding="utf-8").read())


if __name__ == "__main__":
    main()
