"""The summary measures of a report: key, label, number format, and how a change reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from tfcompress.reporting.table import fmt_float, fmt_int, fmt_pct


def _fmt_ms(value: float | None) -> str:
    return fmt_float(value, 4)


class Measure(NamedTuple):
    """One key of `CompressionReport.summary`, as the renderings show it.

    Attributes:
        key: The summary key.
        label: The row's label.
        format: Formats a value of this measure.
        change: How a comparison shows before vs after: `"ratio"` (before /
            after), `"points"` (percentage points), or None (no change shown).
        compared: Whether a comparison lists this measure at all.
    """

    key: str
    label: str
    format: Callable[[Any], str]
    change: str | None
    compared: bool = True

    def cell(self, summary: dict) -> str:
        """This measure's value in `summary`, formatted; `"-"` when absent."""
        return self.format(summary[self.key]) if self.key in summary else "-"


MEASURES: tuple[Measure, ...] = (
    Measure("params", "parameters", fmt_int, "ratio"),
    Measure("nonzero", "non-zero parameters", fmt_int, "ratio"),
    Measure("sparsity", "kernel sparsity", fmt_pct, None),
    Measure("macs", "MACs per sample", fmt_int, "ratio"),
    Measure("float32_bytes", "bytes as float32", fmt_int, None, compared=False),
    Measure("tflite_params", ".tflite parameters", fmt_int, "ratio"),
    Measure("tflite_nonzero", ".tflite non-zero parameters", fmt_int, "ratio"),
    Measure("tflite_sparsity", ".tflite kernel sparsity", fmt_pct, None),
    Measure("tflite_macs", ".tflite MACs per sample", fmt_int, "ratio"),
    Measure("tflite_weight_bytes", ".tflite weight bytes", fmt_int, "ratio"),
    Measure(
        "tflite_weight_container_bytes",
        ".tflite weight bytes, int4 in int8",
        fmt_int,
        None,
        compared=False,
    ),
    Measure(
        "tflite_sparse_weights", ".tflite weights stored sparse", fmt_int, None, compared=False
    ),
    Measure("tflite_bytes", ".tflite bytes", fmt_int, "ratio"),
    Measure("gzip_bytes", ".tflite gzip bytes", fmt_int, "ratio"),
    Measure("keras_accuracy", "Keras accuracy", fmt_float, "points"),
    Measure("tflite_accuracy", ".tflite accuracy", fmt_float, "points"),
    Measure("latency_ms", "latency median (ms)", _fmt_ms, "ratio"),
    Measure("latency_p90_ms", "latency p90 (ms)", _fmt_ms, "ratio"),
)


def select_measures(*keys: str) -> list[Measure]:
    """The measures of `keys`, in the order of `MEASURES`."""
    unknown = set(keys) - {m.key for m in MEASURES}
    if unknown:
        raise ValueError(f"Unknown summary keys. Received: {sorted(unknown)}")
    return [m for m in MEASURES if m.key in keys]


def measure_labels(keys: list[str]) -> list[str]:
    """The labels of the measures `keys`, in the order given."""
    labels = {m.key: m.label for m in MEASURES}
    return [labels[key] for key in keys]


def summary_rows(summary: dict) -> list[list[str]]:
    """`[label, value]` for each measure present in `summary`, in the order of `MEASURES`."""
    return [[m.label, m.cell(summary)] for m in MEASURES if m.key in summary]
