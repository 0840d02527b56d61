"""`ReportComparison`: two compression reports side by side, with ratios."""

from __future__ import annotations

from typing import Protocol

from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.measures import MEASURES
from tfcompress.reporting.table import (
    Renderable,
    fmt_int,
    fmt_pct,
    fmt_ratio,
    render_sections,
)

_COMPARED = [m for m in MEASURES if m.compared]
LAYER_HEADERS = [
    "layer",
    "params",
    "params'",
    "nonzero",
    "nonzero'",
    "sparsity'",
    "structure'",
    "MACs",
    "MACs'",
    "bytes ratio",
]


class _Report(Protocol):
    """What a comparison reads of a `CompressionReport` (whose module imports this one)."""

    name: str
    summary: dict
    layers: list[LayerStats]
    ops: list[LayerStats]

    def to_dict(self) -> dict: ...


def _change(kind: str | None, before, after) -> str:
    if kind == "ratio":
        return fmt_ratio(before, after)
    if kind == "points" and before is not None and after is not None:
        return f"{100 * (after - before):+.1f} pt"
    return "-"


def _pairs(before: list[LayerStats], after: list[LayerStats]):
    """Matches rows with weights by name, or by position when the names differ."""
    b = [r for r in before if r.params]
    a = [r for r in after if r.params]
    by_name = {r.name: r for r in a}
    if all(r.name in by_name for r in b):
        return [(r, by_name[r.name]) for r in b]
    return list(zip(b, a)) if len(a) == len(b) else []


class ReportComparison(Renderable):
    """Before/after view of two `CompressionReport`s.

    Ratios read "how many times smaller/faster" (before / after); accuracy
    changes are in percentage points. Per-layer rows pair the Keras layers of
    both reports' `.tflite` weight ops (by name, else by position), or
    else their Keras layers.

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
        >>> comparison = before.compare(after)
        >>> comparison.ratio("tflite_weight_bytes")
        4.0
        >>> comparison.ratio("gzip_bytes") > 2
        True
    """

    def __init__(self, before: _Report, after: _Report):
        self.before, self.after = before, after

    def ratio(self, key: str) -> float | None:
        """`before / after` of a summary measure, None when either side lacks it."""
        b, a = self.before.summary.get(key), self.after.summary.get(key)
        return None if b is None or a is None or a == 0 else b / a

    def _summary_rows(self) -> list[list[str]]:
        before, after = self.before.summary, self.after.summary
        rows = []
        for m in _COMPARED:
            if m.key in before or m.key in after:
                change = _change(m.change, before.get(m.key), after.get(m.key))
                rows.append([m.label, m.cell(before), m.cell(after), change])
        return rows

    def _layer_pairs(self):
        pairs = _pairs(self.before.ops, self.after.ops)
        return pairs or _pairs(self.before.layers, self.after.layers)

    def _layer_rows(self) -> list[list[str]]:
        return [
            [
                b.name,
                fmt_int(b.params),
                fmt_int(a.params),
                fmt_int(b.nonzero),
                fmt_int(a.nonzero),
                fmt_pct(a.sparsity),
                a.structure or "-",
                fmt_int(b.macs),
                fmt_int(a.macs),
                fmt_ratio(b.stored_bytes, a.stored_bytes),
            ]
            for b, a in self._layer_pairs()
        ]

    def _title(self, markdown: bool) -> str:
        title = f"{self.before.name} -> {self.after.name}"
        return f"## {title}" if markdown else f"Comparison: {title}"

    def _sections(self) -> list[dict]:
        summary = {
            "headers": ["measure", "before", "after", "change"],
            "rows": self._summary_rows(),
        }
        sections = [{"table": summary}]
        layer_rows = self._layer_rows()
        if layer_rows:
            table = {"headers": LAYER_HEADERS, "rows": layer_rows}
            sections.append({"heading": "Per layer (' = after)", "table": table})
        return sections

    def _render(self, markdown: bool) -> str:
        return render_sections(self._title(markdown), self._sections(), markdown)

    def to_dict(self) -> dict:
        keys = [m.key for m in _COMPARED]
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "ratios": {k: self.ratio(k) for k in keys if self.ratio(k) is not None},
        }
