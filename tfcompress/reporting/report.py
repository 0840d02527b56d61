"""`CompressionReport` and `report()`: what every technique is judged by."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field

import keras
import numpy as np

from tfcompress.encryption import is_encrypted
from tfcompress.export.flatbuffer import TFLiteFile, custom_op_codes
from tfcompress.export.interpreter import TFLiteModel
from tfcompress.reporting.comparison import ReportComparison
from tfcompress.reporting.keras_stats import keras_layer_stats
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.measures import measure_labels, summary_rows
from tfcompress.reporting.table import Renderable, fmt_int, fmt_pct, render_sections
from tfcompress.reporting.tflite_stats import tflite_op_stats
from tfcompress.utils.io import read_bytes_or_path
from tfcompress.utils.validation import check_built, check_samples, model_input_shapes

LAYER_HEADERS = [
    "layer",
    "type",
    "params",
    "nonzero",
    "sparsity",
    "structure",
    "unique",
    "MACs",
    "bytes",
]


def gzip_size(content: bytes) -> int:
    """Bytes of `content` gzipped at level 9 with a fixed timestamp (reproducible)."""
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def _sum(rows: list[LayerStats], attr: str) -> int | None:
    values = [getattr(r, attr) for r in rows]
    return None if any(v is None for v in values) else int(sum(values))


def _totals(rows: list[LayerStats]) -> dict:
    kernel_params = sum(r.kernel_params for r in rows)
    known_macs = [r.macs for r in rows if r.macs is not None]
    return {
        "params": sum(r.params for r in rows),
        "nonzero": sum(r.nonzero for r in rows),
        "kernel_params": kernel_params,
        "sparsity": sum(r.kernel_zeros for r in rows) / kernel_params if kernel_params else None,
        "macs": _sum(rows, "macs"),
        "macs_known": sum(known_macs),
        "stored_bytes": sum(r.stored_bytes for r in rows),
        "container_bytes": sum(r.container_bytes for r in rows),
    }


def _grouped(missing: dict[str, str]) -> dict[str, list[str]]:
    """The keys of `missing` by reason."""
    reasons: dict[str, list[str]] = {}
    for key, why in missing.items():
        reasons.setdefault(why, []).append(key)
    return reasons


def _layer_row(r: LayerStats) -> list[str]:
    return [
        r.name,
        r.kind,
        fmt_int(r.params),
        fmt_int(r.nonzero),
        fmt_pct(r.sparsity),
        r.structure or "-",
        fmt_int(r.unique) if r.unique is not None else "-",
        fmt_int(r.macs),
        fmt_int(r.stored_bytes),
    ]


@dataclass
class CompressionReport(Renderable):
    """Sizes, counts, accuracy and latency of a Keras model and/or its `.tflite`.

    Build it with `tfcompress.report(...)`. Per-layer rows come from the Keras
    model (`layers`) and from the `.tflite` ops (`ops`); `summary` holds the
    totals and measurements. Render it with `to_text()`, `to_markdown()` or
    `to_json()`, and compare two with `compare()`.

    Summary keys: `params`, `nonzero`, `sparsity` (zeros among kernel
    elements), `macs` (per sample; None if a layer's is unknown), `float32_bytes`,
    `tflite_params`, `tflite_nonzero`, `tflite_sparsity`, `tflite_macs`,
    `tflite_weight_bytes` (as stored: INT4 packs two values per byte),
    `tflite_weight_container_bytes` (INT4 counted in int8 containers),
    `tflite_bytes`, `gzip_bytes`, `keras_accuracy`,
    `tflite_accuracy`, `latency_ms` (median) and `latency_p90_ms`, each present
    when the inputs allow it; `tflite_sparse_weights` counts the weight tensors
    the `.tflite` stores sparse (TFLite sparsity, densified for the counts).
    A measure asked for but not taken is a key of `missing`, with the reason
    (e.g. the interpreter cannot resolve a custom op: the static figures come
    from the flatbuffer alone).
    """

    name: str
    layers: list[LayerStats] = field(default_factory=list)
    ops: list[LayerStats] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    latency: dict | None = None
    missing: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "summary": self.summary,
            "missing": self.missing,
            "latency": self.latency,
            "layers": [r.to_dict() for r in self.layers],
            "ops": [r.to_dict() for r in self.ops],
        }

    def _title(self, markdown: bool) -> str:
        return f"## {self.name}" if markdown else f"Compression report: {self.name}"

    def _sections(self) -> list[dict]:
        sections = []
        for title, rows in (("Keras layers", self.layers), (".tflite ops", self.ops)):
            shown = [r for r in rows if r.params or r.macs]
            if shown:
                total = LayerStats(
                    "total",
                    "",
                    params=sum(r.params for r in shown),
                    nonzero=sum(r.nonzero for r in shown),
                    kernel_params=sum(r.kernel_params for r in shown),
                    kernel_zeros=sum(r.kernel_zeros for r in shown),
                    macs=_sum(shown, "macs"),
                    stored_bytes=sum(r.stored_bytes for r in shown),
                )
                table = [_layer_row(r) for r in shown] + [_layer_row(total)]
                sections.append(
                    {"heading": title, "table": {"headers": LAYER_HEADERS, "rows": table}}
                )
        notes = [f"- {r.name}: {r.note}" for r in self.layers if r.note]
        if notes:
            sections.append({"heading": "Notes", "text": "\n".join(notes)})
        summary = {"headers": ["measure", "value"], "rows": summary_rows(self.summary)}
        sections.append({"heading": "Summary", "table": summary})
        for why, keys in _grouped(self.missing).items():
            sections.append({"text": f"Not measured ({', '.join(measure_labels(keys))}): {why}."})
        if self.latency:
            lat = self.latency
            sections.append(
                {
                    "text": f"Latency: {lat['runs']} runs after warm-up, batch {lat['batch']}, "
                    f"{lat['num_threads']} thread(s), {lat['backend']} interpreter."
                }
            )
        return sections

    def _render(self, markdown: bool) -> str:
        return render_sections(self._title(markdown), self._sections(), markdown)

    def compare(self, other: CompressionReport) -> ReportComparison:
        """Side by side with `other` (this report is "before", `other` "after")."""
        return ReportComparison(self, other)


MEASURED_BY_INTERPRETER = ("tflite_accuracy", "latency_ms", "latency_p90_ms")


def _tflite_content(tflite) -> bytes:
    """The bytes of `report`'s `tflite` argument (bytes or a path)."""
    content = read_bytes_or_path(tflite, "tflite", "`.tflite`", "`.tflite`", allow_empty=False)
    if is_encrypted(content):
        raise ValueError(
            "`tflite` is encrypted by tfcompress (`encrypt_model`): report on the model "
            "decrypted in memory, `tfcompress.decrypt_model(tflite, key)`."
        )
    return content


def _measure_tflite(
    result: CompressionReport,
    summary: dict,
    content: bytes,
    x: np.ndarray,
    y: np.ndarray,
    num_threads: int,
    latency_runs: int,
) -> None:
    """Accuracy and latency of the `.tflite` in an interpreter; when it cannot run the
    model, `result.missing` says why instead."""
    try:
        runner = TFLiteModel(content, num_threads=num_threads)
        accuracy = runner.evaluate(x, y)
        latency = runner.latency(x[:1], warmup=10, runs=latency_runs)
    except RuntimeError as error:  # the interpreter's own failures (not our argument checks)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        custom = custom_op_codes(content)
        why = f"the interpreter cannot run this model ({first_line})"
        if custom:
            why += f"; its custom ops {custom} need their kernels registered in the runtime"
        result.missing.update(dict.fromkeys(MEASURED_BY_INTERPRETER, why))
        return
    summary["tflite_accuracy"] = accuracy
    result.latency = {**latency, "backend": runner.backend}
    summary["latency_ms"] = latency["median_ms"]
    summary["latency_p90_ms"] = latency["p90_ms"]


def report(
    model: keras.Model | None = None,
    tflite: bytes | str | os.PathLike | None = None,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    name: str | None = None,
    latency_runs: int = 200,
    num_threads: int = 1,
    input_shape: tuple[int, ...] | None = None,
) -> CompressionReport:
    """Measures a Keras model, its `.tflite`, or both.

    Args:
        model: A built Keras model: per-layer parameters, non-zeros, sparsity,
            structure, unique values, MACs and float32 bytes.
        tflite: `.tflite` bytes or path: per-op counts read from the flatbuffer
            alone (no interpreter: a model with custom ops gets them too),
            file bytes and gzip bytes.
        data: `(x, y)` with integer labels: accuracy of the Keras model and of
            the `.tflite`, and the `.tflite` latency on one sample of `x`.
        name: Title of the report (default: the model's name or "tflite").
        latency_runs: Timed `invoke()` calls (after 10 warm-up calls).
        num_threads: Interpreter threads for accuracy and latency.
        input_shape: One sample's shape, for subclassed models with `data`.

    Returns:
        A `CompressionReport`.

    Example:
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_test[:100], data.y_test[:100]
        >>> model = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)], name="mlp")
        >>> before = tfcompress.report(model, tfcompress.export_tflite(model), data=(x, y))
        >>> after = tfcompress.report(
        ...     tflite=tfcompress.export_tflite(model, mode="int8", representative_data=x),
        ...     data=(x, y))
        >>> after.summary["tflite_params"]
        4736
        >>> print(before.compare(after))
        Comparison: mlp -> tflite
        ...
        .tflite weight bytes  18,944  4,736  4.00x
        ...
    """
    if model is None and tflite is None:
        raise ValueError("Pass `model` (a Keras model), `tflite` (bytes or a path), or both.")
    if model is not None:
        check_built(model)
    for argument, value in (("latency_runs", latency_runs), ("num_threads", num_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{argument}` must be a positive integer. Received: {argument}={value!r}"
            )
    content = None if tflite is None else _tflite_content(tflite)
    summary: dict = {}
    result = CompressionReport(name or (model.name if model is not None else "tflite"))
    x = y = None
    if data is not None:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"`data` must be a pair (x, y). Received: type {type(data).__name__}")
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise ValueError(f"`data` has {len(x)} samples but {len(y)} labels: they must match.")
    if model is not None:
        result.layers = keras_layer_stats(model)
        totals = _totals(result.layers)
        summary.update(
            params=totals["params"],
            nonzero=totals["nonzero"],
            sparsity=totals["sparsity"],
            macs=totals["macs"],
            float32_bytes=4 * totals["params"],
        )
        if x is not None:
            shape = model_input_shapes(model, input_shape)[0]
            check_samples(x, shape, "data[0]", f"model {model.name!r}")
            logits = model.predict(x, batch_size=256, verbose=0)
            summary["keras_accuracy"] = float(np.mean(logits.argmax(-1) == y))
    if content is not None:
        model_file = TFLiteFile(content)  # static figures: the flatbuffer alone
        result.ops = tflite_op_stats(model_file)
        totals = _totals(result.ops)
        summary.update(
            tflite_params=totals["params"],
            tflite_macs=totals["macs"],
            tflite_weight_bytes=totals["stored_bytes"],
            tflite_weight_container_bytes=totals["container_bytes"],
            tflite_bytes=len(content),
            gzip_bytes=gzip_size(content),
        )
        summary.update(tflite_nonzero=totals["nonzero"], tflite_sparsity=totals["sparsity"])
        sparse = sum(w.stored_values is not None for r in result.ops for w in r.weights)
        if sparse:
            summary["tflite_sparse_weights"] = sparse
        if x is not None:
            _measure_tflite(result, summary, content, x, y, num_threads, latency_runs)
    result.summary = summary
    return result
