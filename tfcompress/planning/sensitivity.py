"""`sensitivity`: what each option costs each layer, with only that layer changed."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings

import keras
import numpy as np

from tfcompress.export.converter import ConversionError
from tfcompress.export.interpreter import TFLiteModel
from tfcompress.export.tflite import export_tflite
from tfcompress.planning.arguments import WHERE, check_labels, layer_options, split_data
from tfcompress.planning.changes import changed_kernels, kernel_svd
from tfcompress.planning.costs import baseline_cost, dense_macs, layer_latencies, option_cost
from tfcompress.planning.evaluation import changed_outputs
from tfcompress.planning.latency_cache import LatencyCache
from tfcompress.planning.options import LayerOption
from tfcompress.planning.sensitivity_processes import ShardProcesses
from tfcompress.planning.sensitivity_result import Sensitivity, SensitivityEntry
from tfcompress.planning.shards import check_shard, fingerprint, option_count, share, units
from tfcompress.reporting.keras_stats import keras_layer_stats
from tfcompress.reporting.report import gzip_size
from tfcompress.utils.surgery import check_model, require_graph

CALIBRATION_SAMPLES = 100
_TINY = 1e-12


def _is_probability(outputs: np.ndarray) -> bool:
    """Whether the rows are already distributions: non-negative, summing to 1."""
    if outputs.shape[-1] == 1:
        return bool(np.all((outputs >= 0) & (outputs <= 1)))
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def _distribution(outputs: np.ndarray, probabilities: bool) -> np.ndarray:
    """`[rows, classes]` float64 distributions of the outputs (a single output: a binary one)."""
    rows = outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)
    if rows.shape[-1] == 1:
        p = rows if probabilities else 1.0 / (1.0 + np.exp(-rows))
        return np.concatenate([1.0 - p, p], axis=-1)
    if probabilities:
        return rows
    shifted = np.exp(rows - rows.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class _Scores:
    """Sums of KL, agreements and correct predictions per option, batch by batch."""

    def __init__(self, reference, probabilities, labels, count, per_sample):
        self.reference, self.probabilities, self.labels = reference, probabilities, labels
        self.per_sample = per_sample  # output rows per sample
        self.kl = np.zeros(count)
        self.agree = np.zeros(count)
        self.correct = np.zeros(count)
        self.calls = 0
        self.progress = None  # (Progbar, options done before this layer, batches per option)

    def __call__(self, start: int, index: int, outputs: np.ndarray) -> None:
        q = _distribution(outputs, self.probabilities)
        rows = slice(start * self.per_sample, start * self.per_sample + len(q))
        p = self.reference[rows]
        kl = np.sum(p * (np.log(np.maximum(p, _TINY)) - np.log(np.maximum(q, _TINY))), axis=-1)
        self.kl[index] += float(np.maximum(kl, 0.0).sum())
        top = q.argmax(axis=-1)
        self.agree[index] += float(np.sum(top == p.argmax(axis=-1)))
        if self.labels is not None:
            self.correct[index] += float(np.sum(top == self.labels[rows]))
        self.calls += 1
        if self.progress is not None:
            bar, done, batches = self.progress
            bar.update(done + self.calls / batches)


def _predict(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    parts = [model.predict_on_batch(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts], axis=0)


def _model_figures(model, x, accuracy, latency, cache, labelled, zero_macs) -> dict:
    """Whole-model figures: MACs (the report's count less `zero_macs`, those of zero weights
    in the measured layers, as their entries count), float and int8 `.tflite` bytes and gzip
    bytes, int8 latency."""
    macs = [row.macs for row in keras_layer_stats(model)]
    figures = {
        "name": model.name,
        "accuracy": accuracy,
        "macs": None if any(m is None for m in macs) else int(sum(macs)) - zero_macs,
        "float_bytes": None,
        "float_gzip_bytes": None,
        "int8_bytes": None,
        "int8_gzip_bytes": None,
        "latency_ms": None,
        "cpu": cache.cpu if cache is not None else None,
        "samples": labelled,
    }
    try:
        float32 = export_tflite(model, mode="float32")
        figures["float_bytes"], figures["float_gzip_bytes"] = len(float32), gzip_size(float32)
        int8 = export_tflite(
            model,
            mode="int8",
            representative_data=x,
            num_calibration_samples=CALIBRATION_SAMPLES,
        )
    except ConversionError as err:
        warnings.warn(
            f"{WHERE}: the model's .tflite sizes and latency are unknown: {err}", stacklevel=3
        )
        return figures
    figures["int8_bytes"], figures["int8_gzip_bytes"] = len(int8), gzip_size(int8)
    if latency:
        figures["latency_ms"] = TFLiteModel(int8).latency(x[:1])["median_ms"]
    return figures


def _variants(layer, options: list[LayerOption]) -> tuple[dict[str, list[np.ndarray]], tuple]:
    """The changed kernels of each option (a rank: its reconstruction), and the kernel's SVD
    (computed once, when some option is a rank; else None)."""
    ranks = any(option.kind == "rank" for option in options)
    svd = kernel_svd(keras.ops.convert_to_numpy(layer.kernel)) if ranks else None
    return {option.key: changed_kernels(layer, option, svd) for option in options}, svd


def _verbosity(verbose) -> int:
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 0
    if isinstance(verbose, (bool, int)):
        return int(bool(verbose))
    raise ValueError(
        f"{WHERE}: `verbose` must be 'auto', True or False. Received: verbose={verbose!r}"
    )


def sensitivity(
    model: keras.Model,
    data,
    validation_data: tuple | None = None,
    options: dict | None = None,
    layers: list[str] | None = None,
    batch_size: int = 256,
    latency: bool = True,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool | str = "auto",
    shard: tuple[int, int] | None = None,
    processes: int = 1,
) -> Sensitivity:
    """Measures, per compressible layer and option, the effect on the model of changing only
    that layer (no retraining), and the layer's cost under the option.

    Options: pruning to each sparsity in each structure that fits (magnitude masks, as
    `prune_low_magnitude` computes them), weight bits (symmetric per-output-channel fake
    quantization, TFLite's int8 convention), and for Dense layers the ranks of a truncated
    SVD (see `tfcompress.planning.default_options`). Effects: `kl`, the mean KL divergence
    of the changed model's output distribution from the original's (softmax applied unless
    the outputs already are probabilities), `agreement` of the top-1 class with the
    original's, and, where labels are given, `accuracy_drop` in points. Costs: see
    `tfcompress.planning.costs`; latencies are measured in the interpreter on this CPU and
    cached per CPU (`cache_dir`), so each is measured once.

    Fast: each batch reaches the layer once and only the graph after the layer runs per
    option (`tfcompress.planning.evaluation`); the model's own weights are changed while it
    runs and always restored.

    Args:
        model: A built Sequential or functional model with one input and one output.
        data: Input samples, or `(x, y)` with integer labels; the changed models run on
            it unless `validation_data` is given, and its first samples calibrate the
            int8 exports.
        validation_data: `(x, y)` to measure on instead.
        options: None (`default_options` for each layer), a dict of `default_options`
            arguments (`{"sparsities": (0.5, 0.9), "structures": ("16x4",), "bits": (8,),
            "energies": ()}`), or `{layer name: [LayerOption, ...]}` (those layers only).
        layers: Names of the layers to measure (default: all compressible layers).
        batch_size: Samples per evaluation batch.
        latency: Measure latencies (False: latency fields None; nothing is timed).
        cache_dir: The folder of the per-CPU latency cache (default
            `$TFCOMPRESS_CACHE_DIR`, else `~/.cache/tfcompress`).
        verbose: Show a `keras.utils.Progbar` (`"auto"`: when stdout is a terminal).
        shard: `(index, count)`: measure only this shard's share of the (layer, option)
            pairs, every `count`-th from `index` (baselines included); the shard with
            index `count - 1` also measures the whole-model figures. Merge the `count`
            results with `Sensitivity.merge`: it equals the unsharded result (latencies
            aside, which are timed where measured unless cached).
        processes: Measure in this many processes: shards `0 .. processes - 2` in child
            processes (`python -m tfcompress.planning.sensitivity_child`, which load the
            model saved with `model.save`, so custom layers must be registered
            serializables), the last one here, then merged (`seconds`: the wall time).

    Returns:
        A `Sensitivity`: per layer a baseline entry (unchanged, float32 bytes) and one entry
        per option; `.model` holds the whole model's figures: `name`, `accuracy` (None
        without labels), `macs` (with non-zero weights in the measured layers, as their
        entries count them; the report's count elsewhere), `float_bytes`, `float_gzip_bytes`,
        `int8_bytes`, `int8_gzip_bytes` (the `.tflite` files, gzip at level 9),
        `latency_ms` (int8, default interpreter, batch 1), `cpu`, `samples`, `seconds`.
        With `shard`, a part to merge: `.shard` holds its index, count, every pair to
        measure and a fingerprint of the weights, data and settings.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(32, activation="relu", name="fc1"),
        ...     keras.layers.Dense(10, name="logits")], name="mlp")
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> _ = model.fit(data.x_train, data.y_train, epochs=3, verbose=0)
        >>> result = tc.sensitivity(
        ...     model, data.x_train[:200], validation_data=(data.x_test, data.y_test),
        ...     options={"sparsities": (0.5, 0.9), "structures": ("unstructured",),
        ...              "bits": (4,), "energies": ()}, latency=False, verbose=False)
        >>> result.layers
        ['fc1', 'logits']
        >>> [option.key for option in result.options("fc1")]
        ['bits:4', 'prune:unstructured:0.5', 'prune:unstructured:0.9']
        >>> fc1 = result.entry("fc1", "prune:unstructured:0.9")
        >>> fc1.kl > result.entry("fc1", "prune:unstructured:0.5").kl > 0
        True
        >>> fc1.nonzeros < result.baseline("fc1").nonzeros
        True
    """
    start_time = time.perf_counter()
    check_model(model, WHERE, "model")
    require_graph(model, WHERE, "Call it on a functional model of the same layers.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"{WHERE}: model {model.name!r} must have one input and one output. Received: "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"{WHERE}: `batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    show = _verbosity(verbose)
    shard = check_shard(shard, processes)
    x, y = split_data(data, model, "data", need_labels=False)
    if validation_data is not None:
        x_eval, y_eval = split_data(validation_data, model, "validation_data", need_labels=True)
        labels_of = "validation_data"
    else:
        x_eval, y_eval, labels_of = x, y, "data"
    chosen = layer_options(model, options, layers)
    total = option_count(chosen, shard) or 1
    progress = keras.utils.Progbar(total, verbose=show, unit_name="option")
    evaluation = (x_eval, y_eval, labels_of)
    settings = (batch_size, latency, cache_dir)
    if processes == 1:
        return measure(model, x, evaluation, chosen, settings, shard, progress, start_time)
    last = (processes - 1, processes)
    with ShardProcesses(model, x_eval, y_eval, chosen, settings, processes) as children:
        own = measure(model, x, evaluation, chosen, settings, last, children.adding(progress))
        parts = children.results(progress, option_count(chosen, last))
    result = Sensitivity.merge([*parts, own])
    result.model["seconds"] = round(time.perf_counter() - start_time, 3)
    return result


def measure(
    model: keras.Model,
    x: np.ndarray,
    evaluation: tuple,
    chosen: list,
    settings: tuple,
    shard: tuple[int, int] | None,
    progress,
    start_time: float | None = None,
) -> Sensitivity:
    """`sensitivity` on checked arguments: `evaluation` is `(x, y, argument of the labels)`,
    `settings` `(batch_size, latency, cache_dir)`, `progress` has `update(options done)`."""
    start_time = time.perf_counter() if start_time is None else start_time
    x_eval, y_eval, labels_of = evaluation
    batch_size, latency, cache_dir = settings
    original = _predict(model, x_eval, batch_size)
    probabilities = _is_probability(original)
    reference = _distribution(original, probabilities)
    labels = None if y_eval is None else check_labels(y_eval, original.shape, labels_of)
    rows = len(reference)
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(reference.argmax(axis=-1) == labels))
    every = units(chosen)
    mine = share(every, shard)
    figured = shard is None or shard[0] == shard[1] - 1  # measures the whole-model figures

    cache = LatencyCache(cache_dir) if latency else None
    done, entries, zero_macs = 0, [], 0
    for layer, all_opts in chosen:
        opts = [o for o in all_opts if (layer.name, o.key) in mine]
        measured = [None] if (layer.name, "baseline") in mine else []
        if not opts and not measured:
            if figured:
                zero_macs += dense_macs(layer) - baseline_cost(layer).macs
            continue
        variants, svd = _variants(layer, opts)
        scores = _Scores(reference, probabilities, labels, len(opts), rows // len(x_eval))
        scores.progress = (progress, done, -(-len(x_eval) // batch_size))
        if opts:
            changed = [variants[o.key] for o in opts]
            changed_outputs(model, layer, changed, x_eval, batch_size, scores)
        timed = layer_latencies(layer, measured + opts, variants, cache) if latency else {}
        if cache is not None:
            cache.save()
        base = baseline_cost(layer)
        zero_macs += dense_macs(layer) - base.macs
        if measured:
            entries.append(
                SensitivityEntry(
                    layer.name, None, None if labels is None else 0.0, 0.0, 1.0,
                    **dataclasses.asdict(base), **_latency_fields(timed, "baseline"),
                )
            )  # fmt: skip
        for index, option in enumerate(opts):
            kernels = None if option.kind == "rank" else variants[option.key]
            cost = option_cost(layer, option, kernels, svd)
            drop = None
            if labels is not None:
                drop = 100.0 * (accuracy - scores.correct[index] / rows)
            entries.append(
                SensitivityEntry(
                    layer.name, option, drop, float(scores.kl[index] / rows),
                    float(scores.agree[index] / rows), **dataclasses.asdict(cost),
                    **_latency_fields(timed, option.key),
                )
            )  # fmt: skip
        done += len(opts)
        progress.update(done)
    if figured:
        figures = _model_figures(model, x, accuracy, latency, cache, len(x_eval), zero_macs)
    else:
        figures = {"name": model.name, "accuracy": accuracy, "samples": len(x_eval)}
    if shard is not None:
        figures["shard"] = {
            "index": shard[0],
            "count": shard[1],
            "units": [list(unit) for unit in every],
            "fingerprint": fingerprint(model, x_eval, labels, batch_size, latency),
        }
    figures["seconds"] = round(time.perf_counter() - start_time, 3)
    return Sensitivity(entries, figures)


def _latency_fields(timed: dict, key: str) -> dict:
    ms, ours = timed.get(key, (None, None))
    return {"latency_ms": ms, "latency_ms_kernels": ours}
