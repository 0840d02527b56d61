"""`compress`: plan (for a target) and execute a recipe, verify in the interpreter, report."""

from __future__ import annotations

import os
import time
import warnings

import keras
import numpy as np

from tfcompress.export import TFLiteModel, compare_kernels, export_tflite
from tfcompress.kernels import KernelsNotBuiltError
from tfcompress.planning.compression_result import CompressionResult
from tfcompress.planning.outputs import write_outputs
from tfcompress.planning.pipeline import (
    Exported,
    check_recipe,
    cluster_step,
    export_step,
    factorize_step,
    prune_step,
)
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.replan import check_replans, compress_to_target
from tfcompress.planning.sensitivity import sensitivity as measure_sensitivity
from tfcompress.planning.sensitivity_result import Sensitivity
from tfcompress.planning.target import QUANTITIES, Target
from tfcompress.planning.training import Training, resolve_verbose
from tfcompress.reporting import ReportComparison, report
from tfcompress.utils.io import atomic_write_text, new_output_dir
from tfcompress.utils.surgery import check_model, require_graph
from tfcompress.utils.validation import check_samples


def compress(
    model: keras.Model,
    data: tuple[np.ndarray, np.ndarray],
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    target: Target | None = None,
    recipe: Recipe | dict | str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    sensitivity: Sensitivity | None = None,
    verbose: int | str = "auto",
    latency_runs: int = 200,
    replans: int = 1,
) -> CompressionResult:
    """Compresses a trained classifier to a target, or by a recipe, and measures the result.

    With a `target`: measures each layer's `sensitivity` (unless given) and
    `plan`s the recipe that meets it with the least predicted loss. Then runs
    the recipe, each step on a copy (the model passed is never changed):

    1. factorize the layers with a `rank` (truncated SVD initialisation);
    2. prune each listed layer in its structure to its sparsity, rising by the
       recipe's schedule over the fine-tuning epochs (`UpdatePruningStep`),
       distilled from the original model as teacher when the recipe asks
       (`Distiller`, soft targets); strip (and remove pruned channels);
    3. cluster the listed layers (zeros kept), fine-tune (distilled too), strip;
    4. int8: quantization-aware training that keeps the zeros and the shared
       values, 4 bits where the recipe says (`quantize_model(precision=...)`),
       exported from its ranges; `qat.epochs` 0: post-training int8 calibrated
       on 200 training samples;
    5. verify the `.tflite` in the interpreter on `validation_data` (else on
       `data`): accuracy, top-1 agreement with the Keras model it was exported
       from, latency, and again with our int8 kernels (`compare_kernels`; a note
       when the kernel library is missing, or `kernels: none`);
    6. measure each target as the `.tflite` is (not as predicted);
    7. planned for a target the `.tflite` misses: plan again (up to `replans`
       times, from the same sensitivity) with each byte, gzip-byte and MAC limit
       scaled by what the last plan predicted over what its file measured (tighter
       after a miss, looser where the file came out smaller, which gives accuracy
       back), a missed latency limit tightened the same way (a met one is never
       loosened: latency is noisy), the accuracy drop never scaled; run that plan
       and keep the first result that meets the target, else the one that misses
       it least (`attempts` and `notes` say which and why). One warning names
       every target the result kept misses.

    Keras shows its progress bars while training. Labels are integers (sparse
    cross-entropy, on logits unless the model outputs probabilities).

    Args:
        model: A trained, built Sequential or functional classifier (one input,
            one output).
        data: `(x, y)` training arrays; `y` integer class labels.
        validation_data: `(x, y)` for the sensitivity, the progress bars and the
            verification (default: `data`).
        target: A `Target`; give exactly one of `target` and `recipe`.
        recipe: A `Recipe`, its dict, or the path of a YAML/JSON recipe file.
        output_dir: A new folder (an existing non-empty one is refused) for
            `original.keras`, `compressed.keras`, `float32.tflite`,
            `model.tflite`, `recipe.yaml`, `sensitivity.json` (when planned),
            `report.txt`/`.md`/`.json`, `kernels.json`, `result.json`; None
            writes nothing.
        sensitivity: A `Sensitivity` of `model` to plan from (skips measuring it).
        verbose: Keras `fit` verbosity; "auto": a progress bar on a terminal,
            one line per epoch otherwise; 0: silent.
        latency_runs: Timed interpreter runs per latency.
        replans: With a `target`: at most this many re-plans (step 7; 0: none);
            each runs the whole recipe again.

    Returns:
        A `CompressionResult`.

    Raises:
        ValueError: Bad data (shape, non-finite values, labels), a bad `replans`, not exactly one
            of target and recipe, a recipe that names layers the model lacks (the
            error lists its layers) or that a step cannot run (every problem listed).
        InfeasibleTargetError: The plan cannot meet the target.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")])
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(data.x_train, data.y_train, epochs=2, verbose=0)
        >>> recipe = tfcompress.Recipe.from_dict({
        ...     "layers": {"fc1": {"prune": {"structure": "16x4", "sparsity": 0.75}}},
        ...     "pruning": {"frequency": 1}, "fine_tune": {"epochs": 1}})
        >>> result = tfcompress.compress(
        ...     model, (data.x_train, data.y_train), (data.x_test, data.y_test),
        ...     recipe=recipe, verbose=0, latency_runs=5)
        >>> round(tfcompress.get_sparsity(result.model)["fc1/kernel"], 2)
        0.75
        >>> result.targets, result.met  # no target: nothing to miss
        ({}, True)
    """
    start = time.time()
    _check_model(model)
    x, y = check_data(model, data, "data")
    validation = (
        None if validation_data is None else check_data(model, validation_data, "validation_data")
    )
    if (target is None) == (recipe is None):
        raise ValueError(
            "Pass exactly one of `target` (a Target: plan, then compress) and `recipe` (a "
            f"Recipe to run). Received: target={target!r}, recipe={recipe!r}"
        )
    if target is not None and not isinstance(target, Target):
        raise TypeError(
            f"`target` must be a tfcompress.Target. Received: type {type(target).__name__}"
        )
    if sensitivity is not None and target is None:
        raise ValueError("`sensitivity` is for planning: pass it with `target`, not with `recipe`.")
    recipe = _as_recipe(recipe) if recipe is not None else None
    verbose = resolve_verbose(verbose)
    if isinstance(latency_runs, bool) or not isinstance(latency_runs, int) or latency_runs < 1:
        raise ValueError(
            f"`latency_runs` must be a positive integer. Received: latency_runs={latency_runs!r}"
        )
    replans = check_replans(replans)
    if recipe is not None:
        check_recipe(model, recipe.to_dict())
    folder = None if output_dir is None else new_output_dir(os.fspath(output_dir))
    check_x, check_y = validation if validation is not None else (x, y)
    float_bytes = export_tflite(model)

    def run(recipe: Recipe) -> CompressionResult:
        """The recipe's steps on a copy of `model`, verified and measured against `target`."""
        plain = recipe.to_dict()
        check_recipe(model, plain)
        training = Training.for_recipe(model, plain, x, y, validation, verbose)
        compressed = factorize_step(model, plain)
        compressed = prune_step(compressed, plain, training)
        compressed = cluster_step(compressed, plain, training)
        exported = export_step(compressed, plain, training)
        notes: list[str] = []
        comparison, kernels, agreement = _verify(
            model, float_bytes, exported, plain, (check_x, check_y), latency_runs, notes
        )
        targets = measured_targets(target, recipe, comparison, kernels)
        return CompressionResult(
            exported.tflite, exported.model, recipe, comparison, targets, kernels, agreement,
            notes=notes,
        )  # fmt: skip

    if target is None:
        result = run(recipe)
    else:
        if sensitivity is None:
            if verbose:
                print("Measuring each layer's sensitivity.")
            sensitivity = measure_sensitivity(
                model, (x, y), (check_x, check_y), verbose="auto" if verbose else False
            )
        result = compress_to_target(run, model, sensitivity, target, replans, verbose)
    if folder is not None:
        result.files = write_outputs(
            folder, model, float_bytes, result, sensitivity if target else None
        )
    result.seconds = time.time() - start
    if folder is not None:
        atomic_write_text(os.path.join(folder, "result.json"), result.to_json())
    if not result.met:
        replanned = len(result.attempts) - 1
        warnings.warn(
            "compress: the compressed model misses its target, as measured"
            + (f" (after {replanned} re-plan(s); see `notes`)" if replanned else "")
            + ": "
            + "; ".join(result.missed()),
            stacklevel=2,
        )
    return result


def _check_model(model: keras.Model) -> None:
    check_model(model, "compress", "model")
    require_graph(model, "compress", "Build it as a Sequential or functional model.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"compress: `model` must have one input and one output (a classifier). Received: "
            f"{model.name!r} with {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )


def check_data(model: keras.Model, data, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """`(x, y)` as arrays when they fit `model`: x of its input shape and finite, y one
    integer class label per sample, each below the number of outputs."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            f"`{argument}` must be a pair (x, y) of arrays with integer labels y. "
            f"Received: {argument} of type {type(data).__name__}"
        )
    shape = tuple(model.inputs[0].shape[1:])
    x = check_samples(np.asarray(data[0]), shape, f"{argument}[0]", f"model {model.name!r}")
    y = np.asarray(data[1])
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`{argument}[0]` must hold numbers. Received: dtype {x.dtype}")
    x = x.astype("float32", copy=False)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(
            f"`{argument}[0]` holds {bad} NaN or infinite value(s); clean the data first."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    classes = model.outputs[0].shape[-1]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or _whole(y)):
        raise ValueError(
            f"`{argument}[1]` must be one integer class label per sample (not one-hot). "
            f"Received: {argument}[1].shape={y.shape}, dtype {y.dtype}"
        )
    if len(y) != len(x):
        raise ValueError(f"`{argument}` has {len(x)} samples but {len(y)} labels: they must match.")
    if len(x) == 0:
        raise ValueError(f"`{argument}` is empty.")
    y = y.astype("int64")
    if y.min() < 0 or (classes is not None and y.max() >= classes):
        raise ValueError(
            f"`{argument}[1]` labels must be in [0, {classes}) for model {model.name!r} "
            f"({classes} outputs). Received: labels from {y.min()} to {y.max()}"
        )
    return x, y


def _whole(y: np.ndarray) -> bool:
    return np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all()


def _as_recipe(recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, (str, os.PathLike)):
        return Recipe.from_file(recipe)
    raise TypeError(
        "`recipe` must be a Recipe, a dict, or the path of a recipe file. "
        f"Received: type {type(recipe).__name__}"
    )


def _verify(
    original: keras.Model,
    float_bytes: bytes,
    exported: Exported,
    recipe: dict,
    data: tuple[np.ndarray, np.ndarray],
    latency_runs: int,
    notes: list[str],
) -> tuple[ReportComparison, dict | None, float]:
    """Before/after reports, the `.tflite`'s top-1 agreement with its Keras model, and
    the `.tflite` with and without our kernels (int8 only)."""
    x, y = data
    before = report(original, float_bytes, data=data, name="float32", latency_runs=latency_runs)
    after = report(
        exported.model, exported.tflite, data=data, name=exported.label, latency_runs=latency_runs
    )
    keras_top1 = exported.reference.predict(x, batch_size=256, verbose=0).argmax(-1)
    tflite_top1 = TFLiteModel(exported.tflite).predict(x).argmax(-1)
    agreement = float(np.mean(keras_top1 == tflite_top1))
    kernels = None
    if recipe["export"]["mode"] != "int8":
        notes.append("Our int8 kernels were not compared: the export is not int8.")
    elif recipe["kernels"] == "none":
        notes.append("Our int8 kernels were not compared: the recipe says `kernels: none`.")
    else:
        options = {"nodes": "all"} if recipe["kernels"] == "all" else None
        try:
            kernels = compare_kernels(
                exported.tflite, x, runs=max(1, latency_runs // 2), kernel_options=options
            )
        except KernelsNotBuiltError as error:
            notes.append(f"Our int8 kernels were not compared: {error}")
    return before.compare(after), kernels, agreement


def measured_targets(
    target: Target | None, recipe: Recipe, comparison: ReportComparison, kernels: dict | None
) -> dict[str, dict]:
    """Each limit the target sets, with the plan's prediction and the measured value.

    Bytes are the `.tflite`'s weight bytes, gzip bytes the whole file's; latency is
    the `.tflite` at batch 1 as deployed: with our kernels when they ran, else the
    default interpreter; MACs are the `.tflite`'s; the accuracy drop is in points,
    float32 `.tflite` to compressed `.tflite`.
    """
    if target is None:
        return {}
    before, after = comparison.before.summary, comparison.after.summary
    measured = {
        "bytes": after["tflite_weight_bytes"],
        "gzip_bytes": after["gzip_bytes"],
        "latency_ms": kernels["kernels_ms"] if kernels else after.get("latency_ms"),
        "macs": after.get("tflite_macs"),
        "accuracy_drop": 100 * (before["tflite_accuracy"] - after["tflite_accuracy"]),
    }
    predicted = (getattr(recipe, "plan_info", None) or {}).get("predicted") or {}
    out = {}
    for name, limit in target.limits().items():
        quantity = QUANTITIES[name][0]
        value = measured[quantity]
        out[name] = {
            "limit": limit,
            "predicted": predicted.get(quantity),
            "measured": value,
            "met": value is not None and value <= limit,
        }
    return out
