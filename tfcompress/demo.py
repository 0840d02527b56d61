"""The main job: train the small CNN on MNIST-5k, compress it to a target, report before/after."""

from __future__ import annotations

import os
import sys

import keras

from tfcompress.datasets import load_mnist5k
from tfcompress.export import format_comparison
from tfcompress.models import small_cnn
from tfcompress.planning import CompressionResult, Target, compress, sensitivity
from tfcompress.utils import io


def new_output_dir(output_dir: str | None) -> str:
    """Creates a demo's output folder (`tfcompress-demo-<time>` when None); refuses one
    that exists and is not empty (see `tfcompress.utils.io.new_output_dir`)."""
    return io.new_output_dir(output_dir, "tfcompress-demo-%Y%m%d-%H%M%S")


# What the demo's sensitivity measures: few options, so few one-op latencies to time.
DEMO_OPTIONS = {
    "sparsities": (0.8, 0.9, 0.95),
    "structures": ("unstructured", "16x4"),
    "bits": (4,),
    "energies": (),
}


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
    gzip_ratio: float = 40.0,
    max_accuracy_drop: float = 1.0,
    seed: int = 0,
    latency_runs: int = 200,
    verbose: int | None = None,
) -> CompressionResult:
    """Trains the small CNN on MNIST-5k and compresses it to a target with `compress`.

    Pipeline: train the small CNN for `epochs` (Keras progress bars) -> measure
    each layer's sensitivity to a few options (pruning to 80/90/95%, unstructured
    and in 16x4 blocks, 4-bit weights; latencies timed once per CPU and cached)
    -> plan for a `.tflite` `gzip_ratio` times smaller (gzip) than the float one
    with at most `max_accuracy_drop` points lost -> `compress` executes the plan
    (pruning while fine-tuning for 2 epochs, 1 epoch of QAT keeping the zeros,
    int8 export) and verifies it in the interpreter, with and without our
    kernels. Prints the plan (which layer got what, and why), the before/after
    comparison, the kernels' line, whether each target was met as measured, and
    where the files and plots are.

    Writes into `output_dir` (a new folder; an existing non-empty one is
    refused) what `compress` writes: `original.keras`, `compressed.keras`,
    `float32.tflite`, `model.tflite`, `recipe.yaml`, `sensitivity.json`,
    `report.txt`/`.md`/`.json`/`.html`, `kernels.json`, `result.json` and
    `plots/*.png`.

    Args:
        output_dir: New folder for the outputs (default: a timestamped one here).
        epochs: Training epochs.
        gzip_ratio: How many times smaller than the float `.tflite` (gzip) to plan for.
        max_accuracy_drop: Most accuracy lost, in points (checked as measured).
        seed: Seed of the data split, weights and shuffling.
        latency_runs: Timed interpreter runs per model.
        verbose: Keras `fit` verbosity; default: progress bar on a terminal,
            one line per epoch otherwise.

    Returns:
        The `CompressionResult`.
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    output_dir = new_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    data = load_mnist5k(seed=seed)
    print(f"MNIST-5k: {len(data.x_train)} training and {len(data.x_test)} test images.")
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    model = compile_classifier(small_cnn())
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=verbose)
    train, test = (data.x_train, data.y_train), (data.x_test, data.y_test)
    print("Measuring each layer's sensitivity (only that layer changed, no training).")
    measured = sensitivity(model, train, test, options=DEMO_OPTIONS, verbose="auto")
    target = Target.from_ratio(measured, gzip=gzip_ratio, max_accuracy_drop=max_accuracy_drop)
    print(f"Target: {target}")
    result = compress(
        model, train, test, target=target, output_dir=output_dir, sensitivity=measured,
        verbose=verbose, latency_runs=latency_runs,
    )  # fmt: skip
    print()
    print(result.report.to_text())
    if result.kernels is not None:
        print(format_comparison(result.kernels))
    for line in result.notes:
        print(line)
    for name, t in result.targets.items():
        verdict = "met" if t["met"] else "MISSED"
        print(f"target {name} {t['limit']:,.4g}: measured {t['measured']:,.4g} ({verdict})")
    print(f"Outputs written to {os.path.abspath(output_dir)} (plots: plots/*.png, report.html)")
    return result
