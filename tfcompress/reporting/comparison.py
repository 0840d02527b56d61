"""`ReportComparison`: two compression reports side by side, with ratios."""

from __future__ import annotations

from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.report import CompressionReport
from tfcompress.reporting.table import Renderable, fmt_float, fmt_int, fmt_pct, fmt_ratio, render_table

# (summary key, label, formatter, how the change is shown)
_MEASURES = [
    ("params", "parameters", fmt_int, "ratio"),
    ("nonzero", "non-zero parameters", fmt_int, "ratio"),
    ("sparsity", "kernel sparsity", fmt_pct, None),
    ("macs", "MACs per sample", fmt_int, "ratio"),
    ("tflite_params", ".tflite parameters", fmt_int, "ratio"),
    ("tflite_nonzero", ".tflite non-zero parameters", fmt_int, "ratio"),
    ("tflite_sparsity", ".tflite kernel sparsity", fmt_pct, None),
    ("tflite_macs", ".tflite MACs per sample", fmt_int, "ratio"),
    ("tflite_weight_bytes", ".tflite weight bytes", fmt_int, "ratio"),
    ("tflite_bytes", ".tflite bytes", fmt_int, "ratio"),
    ("gzip_bytes", ".tflite gzip bytes", fmt_int, "ratio"),
    ("keras_accuracy", "Keras accuracy", fmt_float, "points"),
    ("tflite_accuracy", ".tflite accuracy", fmt_float, "points"),
    ("latency_ms", "latency median (ms)", lambda v: fmt_float(v, 4), "ratio"),
    ("latency_p90_ms", "latency p90 (ms)", lambda v: fmt_float(v, 4), "ratio"),
]


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
        >>> comparison = before.compare(after)
        >>> comparison.ratio("gzip_bytes")  # doctest: +SKIP
        4.6
    """

    def __init__(self, before: CompressionReport, after: CompressionReport):
        self.before, self.after = before, after

    def ratio(self, key: str) -> float | None:
        """`before / after` of a summary measure, None when either side lacks it."""
        b, a = self.before.summary.get(key), self.after.summary.get(key)
        return None if b is None or a is None or a == 0 else b / a

    def _summary_rows(self) -> list[list[str]]:
        before, after = self.before.summary, self.after.summary
        rows = []
        for key, label, fmt, kind in _MEASURES:
            if key not in before and key not in after:
                continue
            cells = [fmt(side[key]) if key in side else "-" for side in (before, after)]
            rows.append([label, *cells, _change(kind, before.get(key), after.get(key))])
        return rows

    def _layer_pairs(self):
        pairs = _pairs(self.before.ops, self.after.ops)
        return pairs or _pairs(self.before.layers, self.after.layers)

    def _layer_rows(self) -> list[list[str]]:
        return [
            [b.name, fmt_int(b.params), fmt_int(a.params), fmt_int(b.nonzero), fmt_int(a.nonzero),
             fmt_pct(a.sparsity), a.structure or "-", fmt_int(b.macs), fmt_int(a.macs),
             fmt_ratio(b.stored_bytes, a.stored_bytes)]
            for b, a in self._layer_pairs()
        ]  # fmt: skip

    def _render(self, markdown: bool) -> str:
        title = f"{self.before.name} -> {self.after.name}"
        parts = [f"## {title}" if markdown else f"Comparison: {title}"]
        parts.append(
            render_table(["measure", "before", "after", "change"], self._summary_rows(), markdown)
        )
        layer_rows = self._layer_rows()
        if layer_rows:
            headers = ["layer", "params", "params'", "nonzero", "nonzero'", "sparsity'",
                       "structure'", "MACs", "MACs'", "bytes ratio"]  # fmt: skip
            parts.append(("### " if markdown else "") + "Per layer (' = after)")
            parts.append(render_table(headers, layer_rows, markdown))
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict:
        keys = [key for key, *_ in _MEASURES]
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "ratios": {k: self.ratio(k) for k in keys if self.ratio(k) is not None},
        }
