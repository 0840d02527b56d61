"""`factorization_summary`: each replaced layer's rank, parameters and MACs, before and after."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import keras
import numpy as np

from tfcompress.factorization.factorized_conv2d import FactorizedConv2D
from tfcompress.factorization.factorized_dense import FactorizedDense
from tfcompress.reporting import report
from tfcompress.reporting.table import Renderable, fmt_float, fmt_int, fmt_ratio, render_table

HEADERS = [
    "layer",
    "form",
    "rank",
    "full rank",
    "params",
    "params'",
    "MACs",
    "MACs'",
    "params ratio",
    "kernel error",
]


def _paths(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """`(name, layer)` of every leaf layer, nested ones named `outer/inner` as in the report."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _paths(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def _full_rank(layer: keras.layers.Layer, kernel: np.ndarray) -> str:
    if isinstance(layer, FactorizedDense) or layer.scheme == "spatial":
        kh, kw = kernel.shape[:2] if kernel.ndim == 4 else (1, 1)
        return str(min(kh * kernel.shape[-2], kw * kernel.shape[-1]))
    return f"{kernel.shape[-2]}x{kernel.shape[-1]}"


@dataclass
class FactorizationSummary(Renderable):
    """What `factorize` did, per replaced layer and in total.

    `rows` hold, per replaced layer: `layer`, `form` (`dense`, `spatial`,
    `channel`), `rank` (`"16"`, or `"r_in x r_out"`), `full_rank` (the rank
    at which the factorization is exact), `params`/`params_after` (weights
    and bias), `macs`/`macs_after` (per sample) and `kernel_error`, the
    relative Frobenius error `||W - W'|| / ||W||` of the kernel the layer
    applies (before fine-tuning: the discarded singular-value energy, as a
    norm). `totals` sums the replaced layers and the whole models.
    """

    rows: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"layers": self.rows, "totals": self.totals}

    def _render(self, markdown: bool) -> str:
        def line(name, r, form="", rank="", full=""):
            error = r.get("kernel_error")
            return [
                name,
                form,
                rank,
                full,
                fmt_int(r["params"]),
                fmt_int(r["params_after"]),
                fmt_int(r["macs"]),
                fmt_int(r["macs_after"]),
                fmt_ratio(r["params"], r["params_after"]),
                "" if error is None else fmt_float(error),
            ]

        table = [line(r["layer"], r, r["form"], r["rank"], r["full_rank"]) for r in self.rows]
        table += [line(f"total ({key.replace('_', ' ')})", t) for key, t in self.totals.items()]
        title = "Factorized layers (' = after)"
        return f"{'### ' if markdown else ''}{title}\n\n{render_table(HEADERS, table, markdown)}\n"


def factorization_summary(original: keras.Model, factorized: keras.Model) -> FactorizationSummary:
    """Lists the layers of `factorized` that replace a layer of `original` of the same name.

    Args:
        original: The model given to `factorize`.
        factorized: Its result (after fine-tuning too: the kernel error then
            includes what training changed).

    Returns:
        A `FactorizationSummary`; print it, or `to_markdown()`/`to_json()`.

    Example:
        >>> from tfcompress.factorization import factorization_summary
        >>> model = tfcompress.models.lenet_300_100()
        >>> small = tfcompress.factorize(model, rank=16, layers=["fc1"])
        >>> summary = factorization_summary(model, small)
        >>> row = summary.rows[0]
        >>> row["layer"], row["rank"], row["params"], row["params_after"]
        ('fc1', '16', 235500, 17644)
        >>> print(summary)
        Factorized layers (' = after)
        ...
        fc1  dense  16  300  235,500  17,644  235,200  17,344  13.35x ...
    """
    before = {r.name: r for r in report(original).layers}
    after = {r.name: r for r in report(factorized).layers}
    old_layers = dict(_paths(original))
    rows = []
    for name, layer in _paths(factorized):
        if not isinstance(layer, (FactorizedDense, FactorizedConv2D)) or name not in old_layers:
            continue
        kernel = keras.ops.convert_to_numpy(old_layers[name].kernel)
        error = np.linalg.norm(kernel - layer.effective_kernel()) / max(
            np.linalg.norm(kernel), np.finfo(np.float32).tiny
        )
        ranks = (layer.rank,) if isinstance(layer, FactorizedDense) else layer.ranks
        rows.append(
            {
                "layer": name,
                "form": "dense" if isinstance(layer, FactorizedDense) else layer.scheme,
                "rank": "x".join(str(r) for r in ranks),
                "full_rank": _full_rank(layer, kernel),
                "params": before[name].params,
                "params_after": after[name].params,
                "macs": before[name].macs,
                "macs_after": after[name].macs,
                "kernel_error": float(error),
            }
        )

    def total(rows_before, rows_after) -> dict:
        def add(rs, key):
            values = [getattr(r, key) for r in rs]
            return None if None in values else int(sum(values))

        return {
            "params": add(rows_before, "params"),
            "params_after": add(rows_after, "params"),
            "macs": add(rows_before, "macs"),
            "macs_after": add(rows_after, "macs"),
        }

    replaced = [r["layer"] for r in rows]
    totals = {
        "replaced_layers": total([before[n] for n in replaced], [after[n] for n in replaced]),
        "model": total(list(before.values()), list(after.values())),
    }
    return FactorizationSummary(rows, totals)
