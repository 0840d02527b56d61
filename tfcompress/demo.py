"""The main job: train the small CNN on MNIST-5k, compress it, and report before/after."""

from __future__ import annotations

import json
import os
import sys

import keras

from tfcompress.core.blocks import BLOCK_SHAPE
from tfcompress.datasets import load_mnist5k
from tfcompress.export import compare_kernels, export_tflite, format_comparison
from tfcompress.kernels import KernelsNotBuiltError
from tfcompress.models import small_cnn
from tfcompress.pruning import (
    PolynomialDecay,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model, strip_quantization
from tfcompress.reporting import ReportComparison, report
from tfcompress.utils import io
from tfcompress.utils.io import atomic_write_bytes, atomic_write_text


def new_output_dir(output_dir: str | None) -> str:
    """Creates a demo's output folder (`tfcompress-demo-<time>` when None); refuses one
    that exists and is not empty (see `tfcompress.utils.io.new_output_dir`)."""
    return io.new_output_dir(output_dir, "tfcompress-demo-%Y%m%d-%H%M%S")


# The 16x4 block does not fit conv1 (9 inputs per filter) nor the 10 logits: they stay dense.
KEPT_DENSE = ("conv1", "logits")


def kept_dense(model: keras.Model) -> list[str]:
    """The layers of `KEPT_DENSE` that `model` has (LeNet-300-100 has no conv1)."""
    names = {layer.name for layer in model.layers}
    return [name for name in KEPT_DENSE if name in names]


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Adam and sparse cross-entropy on logits, with accuracy: how the demos train."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def run_demo(
    output_dir: str | None = None,
    epochs: int = 3,
    prune_epochs: int = 2,
    qat_epochs: int = 1,
    sparsity: float = 0.8,
    seed: int = 0,
    latency_runs: int = 200,
    verbose: int | None = None,
    with_kernels: bool = True,
) -> ReportComparison:
    """Trains, compresses and measures the small CNN on MNIST-5k.

    Pipeline: train the small CNN for `epochs` (Keras progress bars) -> export
    float32 `.tflite` -> prune `conv2` and `fc1` in 16x4 blocks to `sparsity`
    while fine-tuning for `prune_epochs` -> quantization-aware training for
    `qat_epochs` that keeps the pruned zeros (`prune_preserve_8bit`) -> int8
    `.tflite` from the QAT ranges -> report both on the 1,000 test images
    (accuracy, sparsity and structure, size, gzip size, latency) -> print the
    comparison -> run the int8 model with and without our own kernels
    (`tfcompress.kernels`) and print both latencies and whether the predictions
    are identical. With `qat_epochs=0` the int8 model is post-training quantized
    with 200 training images as calibration data instead.

    Writes into `output_dir` (a new folder; an existing non-empty one is
    refused): `model.keras`, `pruned.keras`, `qat.keras`, `float32.tflite`,
    `int8.tflite`, the comparison as `report.txt`, `report.md` and
    `report.json`, and `kernels.json` (with and without our kernels).

    Args:
        output_dir: New folder for the outputs (default: a timestamped one here).
        epochs: Training epochs.
        prune_epochs: Fine-tuning epochs while pruning (0 skips pruning).
        qat_epochs: Quantization-aware training epochs (0: post-training int8).
        sparsity: Target sparsity of the block-pruned layers, in [0, 1).
        seed: Seed of the data split, weights and shuffling.
        latency_runs: Timed interpreter runs per model.
        verbose: Keras `fit` verbosity; default: progress bar on a terminal,
            one line per epoch otherwise.
        with_kernels: Also compare the int8 model with and without our kernels
            (skipped with a note when the kernel library was not built).

    Returns:
        The `ReportComparison` (before: float model, after: int8 `.tflite`).
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    if prune_epochs < 0:
        raise ValueError(f"`prune_epochs` must be >= 0. Received: prune_epochs={prune_epochs}")
    if qat_epochs < 0:
        raise ValueError(f"`qat_epochs` must be >= 0. Received: qat_epochs={qat_epochs}")
    output_dir = new_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    data = load_mnist5k(seed=seed)
    print(f"MNIST-5k: {len(data.x_train)} training and {len(data.x_test)} test images.")

    model = compile_classifier(small_cnn())
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=verbose)
    model.save(os.path.join(output_dir, "model.keras"))
    float_bytes = export_tflite(model, os.path.join(output_dir, "float32.tflite"))

    compressed, label = model, "int8"
    if prune_epochs:
        steps = prune_epochs * -(-len(data.x_train) // 64)
        schedule = PolynomialDecay(0.0, sparsity, begin_step=0, end_step=steps // 2, frequency=10)
        wrapped = prune_low_magnitude(model, schedule, block_size=BLOCK_SHAPE, skip=KEPT_DENSE)
        pruned = compile_classifier(wrapped)
        print(f"Pruning conv2 and fc1 to {sparsity:.0%} in 16x4 blocks while fine-tuning.")
        pruned.fit(
            data.x_train,
            data.y_train,
            epochs=prune_epochs,
            batch_size=64,
            verbose=verbose,
            callbacks=[UpdatePruningStep()],
        )
        compressed = strip_pruning(pruned)
        compressed.save(os.path.join(output_dir, "pruned.keras"))
        label = f"16x4 block-pruned {sparsity:.0%} + int8"

    int8_path = os.path.join(output_dir, "int8.tflite")
    if qat_epochs:
        print("Quantization-aware training (int8, pruned zeros kept).")
        qat = compile_classifier(quantize_model(compressed, scheme="prune_preserve_8bit"), 1e-4)
        qat.fit(data.x_train, data.y_train, epochs=qat_epochs, batch_size=64, verbose=verbose)
        qat.save(os.path.join(output_dir, "qat.keras"))
        int8_bytes = export_tflite(qat, int8_path, mode="int8")
        compressed, label = strip_quantization(qat), f"{label} (QAT)"
    else:
        int8_bytes = export_tflite(
            compressed, int8_path, mode="int8", representative_data=data.x_train[:200]
        )
        label = f"{label} (post-training)"
    test = (data.x_test, data.y_test)
    before = report(model, float_bytes, data=test, name="float32", latency_runs=latency_runs)
    after = report(compressed, int8_bytes, data=test, name=label, latency_runs=latency_runs)
    comparison = before.compare(after)
    atomic_write_text(os.path.join(output_dir, "report.txt"), comparison.to_text())
    atomic_write_text(os.path.join(output_dir, "report.md"), comparison.to_markdown())
    atomic_write_bytes(os.path.join(output_dir, "report.json"), comparison.to_json().encode())
    print()
    print(comparison.to_text())
    if with_kernels:
        print()
        _compare_with_kernels(int8_bytes, data.x_test, latency_runs, output_dir)
    print(f"Outputs written to {os.path.abspath(output_dir)}")
    return comparison


def _compare_with_kernels(int8_bytes: bytes, x, latency_runs: int, output_dir: str) -> None:
    """Prints (and saves as `kernels.json`) the int8 model with and without our kernels."""
    try:
        summary = compare_kernels(int8_bytes, x, runs=max(1, latency_runs // 2))
    except KernelsNotBuiltError as error:
        print(f"Our int8 kernels were not compared: {error}")
        return
    print(format_comparison(summary))
    atomic_write_text(os.path.join(output_dir, "kernels.json"), json.dumps(summary, indent=2))
