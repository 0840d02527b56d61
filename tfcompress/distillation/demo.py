"""`tfcompress demo --distill`: a 1/50 student of the small CNN, from scratch vs distilled."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np

from tfcompress.datasets import load_mnist5k
from tfcompress.demo import new_output_dir
from tfcompress.distillation.comparison import DistillationComparison
from tfcompress.distillation.distiller import Distiller
from tfcompress.distillation.make_student import make_student
from tfcompress.distillation.soft_target_distillation import SoftTargetDistillation
from tfcompress.export import export_tflite
from tfcompress.models import small_cnn
from tfcompress.reporting import report
from tfcompress.utils.io import atomic_write_bytes, atomic_write_text

BATCH = 64


def _labels_loss() -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run_distill_demo(
    output_dir: str | None = None,
    teacher_epochs: int = 2,
    epochs: int = 5,
    width: float = 0.14,
    temperature: float = 4.0,
    alpha: float = 0.1,
    seed: int = 0,
    latency_runs: int = 200,
    verbose: int | None = None,
) -> DistillationComparison:
    """Trains the small CNN on MNIST-5k, then a student of about 1/50 of its size twice.

    Pipeline: train the teacher for `teacher_epochs` -> `make_student(teacher,
    width)` (about 24k of 1.2M parameters at 0.14) -> train one copy on the
    labels and another, from the same weights and in the same data order,
    with a `Distiller` (soft targets at `temperature` weighted `1 - alpha`,
    labels weighted `alpha`, teacher outputs cached) for `epochs` each ->
    float32 `.tflite` of all three -> report them on the 1,000 test images
    (parameters, MACs, bytes, accuracy, latency) -> print the comparison. On
    this small, clean data set distillation adds little over the labels; the
    benchmark (`benchmarks/results/distillation.md`) shows where it helps.

    Writes into `output_dir` (a new folder; an existing non-empty one is
    refused): `teacher.keras`, `scratch.keras`, `distiller.keras`,
    `student.keras` (the distilled student alone), `teacher.tflite`,
    `scratch.tflite`, `student.tflite`, and the comparison as `report.txt`,
    `report.md` and `report.json`.

    Args:
        output_dir: New folder for the outputs (default: a timestamped one here).
        teacher_epochs: Training epochs of the teacher.
        epochs: Training epochs of each student.
        width: Fraction of the teacher's filters and units the student keeps, in (0, 1].
        temperature: Soft-target temperature, > 0.
        alpha: Weight of the label loss, in [0, 1); soft targets get `1 - alpha`.
        seed: Seed of the data split, weights and data order.
        latency_runs: Timed interpreter runs per model.
        verbose: Keras `fit` verbosity; default: progress bar on a terminal,
            one line per epoch otherwise.

    Returns:
        The `DistillationComparison` (teacher, scratch student, distilled student).
    """
    for argument, value in (("teacher_epochs", teacher_epochs), ("epochs", epochs)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{argument}` must be an integer >= 1. Received: {argument}={value!r}"
            )
    if not 0 <= alpha < 1:
        raise ValueError(f"`alpha` must be in [0, 1). Received: alpha={alpha!r}")
    output_dir = new_output_dir(output_dir)
    keras.utils.set_random_seed(seed)
    data = load_mnist5k(seed=seed)
    x, y = data.x_train, data.y_train
    rng = np.random.default_rng(seed)
    print(f"MNIST-5k: {len(x)} training and {len(data.x_test)} test images.")
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    teacher = small_cnn()
    teacher.compile(keras.optimizers.Adam(1e-3), _labels_loss(), metrics=["accuracy"])
    teacher.fit(x, y, epochs=teacher_epochs, batch_size=BATCH, verbose=verbose)
    teacher.save(os.path.join(output_dir, "teacher.keras"))
    teacher.trainable = False

    start = make_student(teacher, width).get_weights()
    students = {}
    for label in ("scratch", "distilled"):
        students[label] = make_student(teacher, width)
        students[label].set_weights(start)
    params = students["scratch"].count_params()
    print(
        f"Student: make_student(teacher, width={width}): {params:,} parameters, "
        f"1/{teacher.count_params() / params:.0f} of the teacher's."
    )
    order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])  # both see it

    print(f"Training the student on the labels for {epochs} epochs (one pass, pre-shuffled).")
    scratch = students["scratch"]
    scratch.compile(keras.optimizers.Adam(3e-3), _labels_loss(), metrics=["accuracy"])
    scratch.fit(x[order], y[order], batch_size=BATCH, shuffle=False, verbose=verbose)
    scratch.save(os.path.join(output_dir, "scratch.keras"))

    print(f"Distilling the same student (T={temperature}, labels weighted {alpha}).")
    distiller = Distiller(
        teacher,
        students["distilled"],
        SoftTargetDistillation(temperature),
        [1 - alpha],
        alpha=alpha,
        cache_teacher_outputs=True,
    )
    distiller.compile(keras.optimizers.Adam(3e-3), _labels_loss(), metrics=["accuracy"])
    distiller.fit(x[order], y[order], batch_size=BATCH, shuffle=False, verbose=verbose)
    distiller.save(os.path.join(output_dir, "distiller.keras"))
    distiller.student.save(os.path.join(output_dir, "student.keras"))

    test = (data.x_test, data.y_test)
    reports = []
    for model, file, label in (
        (teacher, "teacher", "teacher"),
        (scratch, "scratch", "student, scratch"),
        (distiller.student, "student", "student, distilled"),
    ):
        content = export_tflite(model, os.path.join(output_dir, f"{file}.tflite"))
        reports.append(report(model, content, data=test, name=label, latency_runs=latency_runs))
    comparison = DistillationComparison(*reports)
    atomic_write_text(os.path.join(output_dir, "report.txt"), comparison.to_text())
    atomic_write_text(os.path.join(output_dir, "report.md"), comparison.to_markdown())
    atomic_write_bytes(os.path.join(output_dir, "report.json"), comparison.to_json().encode())
    print()
    print(comparison.to_text())
    print(f"Outputs written to {os.path.abspath(output_dir)}")
    return comparison
