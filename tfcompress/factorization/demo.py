"""`tfcompress demo --factorize`: the small CNN's big Dense layer, factorized and measured."""

from __future__ import annotations

import json
import os
import sys

import keras

from tfcompress.datasets import load_mnist5k
from tfcompress.demo import compile_classifier, new_output_dir
from tfcompress.export import export_tflite
from tfcompress.factorization.factorize import factorize
from tfcompress.factorization.summary import factorization_summary
from tfcompress.models import small_cnn
from tfcompress.reporting import ReportComparison, report
from tfcompress.utils.io import atomic_write_bytes, atomic_write_text


def run_factorize_demo(
    output_dir: str | None = None,
    epochs: int = 3,
    finetune_epochs: int = 1,
    rank: int = 16,
    seed: int = 0,
    latency_runs: int = 200,
    verbose: int | None = None,
) -> ReportComparison:
    """Trains the small CNN on MNIST-5k, factorizes `fc1` (9216x128) and compares.

    Pipeline: train for `epochs` -> float32 `.tflite` -> `factorize` `fc1` at
    `rank` from the SVD of its kernel (the factorization summary is printed)
    -> fine-tune for `finetune_epochs` -> float32 `.tflite` -> report both on
    the 1,000 test images (parameters, MACs, bytes, accuracy, latency) ->
    print the comparison. Writes `model.keras`, `factorized.keras`,
    `float32.tflite`, `factorized.tflite`, and the factorization summary with
    the comparison as `report.txt`, `report.md` and `report.json` into
    `output_dir` (a new folder; an existing non-empty one is refused).

    Args:
        output_dir: New folder for the outputs (default: a timestamped one here).
        epochs: Training epochs.
        finetune_epochs: Fine-tuning epochs after factorizing (0: none).
        rank: Rank of `fc1`, 1 to 128.
        seed: Seed of the data split, weights and shuffling.
        latency_runs: Timed interpreter runs per model.
        verbose: Keras `fit` verbosity; default: progress bar on a terminal,
            one line per epoch otherwise.

    Returns:
        The `ReportComparison` (before: the float model, after: the factorized one).
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    if finetune_epochs < 0:
        raise ValueError(
            f"`finetune_epochs` must be >= 0. Received: finetune_epochs={finetune_epochs}"
        )
    output_dir = new_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    data = load_mnist5k(seed=seed)
    print(f"MNIST-5k: {len(data.x_train)} training and {len(data.x_test)} test images.")
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    model = compile_classifier(small_cnn())
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=verbose)
    model.save(os.path.join(output_dir, "model.keras"))
    float_bytes = export_tflite(model, os.path.join(output_dir, "float32.tflite"))

    factorized = factorize(model, rank={"fc1": rank})
    summary = factorization_summary(model, factorized)
    print(f"\n{summary}")
    if finetune_epochs:
        print(f"Fine-tuning the factorized model for {finetune_epochs} epoch(s).")
        compile_classifier(factorized).fit(
            data.x_train, data.y_train, epochs=finetune_epochs, batch_size=64, verbose=verbose
        )
    factorized.save(os.path.join(output_dir, "factorized.keras"))
    factorized_bytes = export_tflite(factorized, os.path.join(output_dir, "factorized.tflite"))

    test = (data.x_test, data.y_test)
    before = report(model, float_bytes, data=test, name="float32", latency_runs=latency_runs)
    after = report(
        factorized,
        factorized_bytes,
        data=test,
        latency_runs=latency_runs,
        name=f"fc1 factorized, rank {rank}",
    )
    comparison = before.compare(after)
    atomic_write_text(os.path.join(output_dir, "report.txt"), f"{summary}\n{comparison.to_text()}")
    atomic_write_text(
        os.path.join(output_dir, "report.md"),
        f"{summary.to_markdown()}\n{comparison.to_markdown()}",
    )
    payload = {"factorization": summary.to_dict(), **comparison.to_dict()}
    atomic_write_bytes(
        os.path.join(output_dir, "report.json"), json.dumps(payload, indent=2).encode()
    )
    print(comparison.to_text())
    print(f"Outputs written to {os.path.abspath(output_dir)}")
    return comparison
