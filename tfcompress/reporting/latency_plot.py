"""`plot_layer_latency`: per-layer latency with and without the tfcompress kernels."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tfcompress.reporting.figures import (
    check_png_path,
    drawable,
    new_figure,
    number,
    save_png,
)

DEFAULT_COLOR, KERNELS_COLOR = "#8c8c8c", "#c44e52"
BAR_HEIGHT = 0.38


def latency_series(rows: list[dict]) -> dict:
    """The data `plot_layer_latency` draws, without drawing it (same format as its return)."""
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"`rows` must be a non-empty list of dicts. Received: {rows!r:.80}")
    data = {"layers": [], "latency_ms": [], "latency_ms_kernels": [], "skipped": []}
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, Mapping) or not isinstance(row.get("layer"), str):
            raise ValueError(
                f"`{where}` must be a dict with a 'layer' name. Received: {row!r:.120}"
            )
        layer = row["layer"]
        default = number(row.get("latency_ms"), f"{where}['latency_ms']")
        kernels = number(row.get("latency_ms_kernels"), f"{where}['latency_ms_kernels']")
        for key, value in (("latency_ms", default), ("latency_ms_kernels", kernels)):
            if value is not None and value < 0:
                raise ValueError(f"`{where}[{key!r}]` (layer {layer!r}) is negative: {value!r}")
        if not drawable(
            default, f"{where}['latency_ms']", "plot_layer_latency", f"layer {layer!r}"
        ):
            data["skipped"].append(layer)
            continue
        what = f"the kernels' bar of layer {layer!r}"
        if kernels is not None and not drawable(
            kernels, f"{where}['latency_ms_kernels']", "plot_layer_latency", what
        ):
            kernels = None
        data["layers"].append(layer)
        data["latency_ms"].append(default)
        data["latency_ms_kernels"].append(kernels)
    if not data["layers"]:
        raise ValueError(f"`rows`: no row has a finite 'latency_ms'. Left out: {data['skipped']}")
    return data


def plot_layer_latency(
    rows: list[dict],
    path: str | os.PathLike,
    note: str | None = None,
    title: str = "Per-layer latency, int8, batch 1",
) -> dict:
    """Per-layer latency as paired horizontal bars: the default interpreter and our kernels.

    A kernels bar is labelled with its speed-up over the default; a layer our
    kernels do not claim (`latency_ms_kernels` None) shows "not claimed". A
    row whose `latency_ms` is None, NaN or infinite is left out with a warning.

    Args:
        rows: Dicts `{"layer": str, "latency_ms": float, "latency_ms_kernels":
            float | None}` in model order (e.g. the chosen option's entry of
            each layer in the Sensitivity JSON); other keys are ignored.
        path: The `.png` to write (atomically); its folder must exist.
        note: A line of small text under the plot (say which CPU measured it).
        title: The figure's title.

    Returns:
        The data drawn: `{"layers": [...], "latency_ms": [...],
        "latency_ms_kernels": [float | None], "skipped": [layers left out]}`.

    Example:
        >>> from tfcompress.reporting.plots import plot_layer_latency
        >>> rows = [{"layer": "conv2", "latency_ms": 0.21, "latency_ms_kernels": 0.09},
        ...         {"layer": "fc1", "latency_ms": 0.05, "latency_ms_kernels": None}]
        >>> plot_layer_latency(rows, "latency.png", note="CPU: example")["latency_ms_kernels"]
        [0.09, None]
    """
    path = check_png_path(path, "plot_layer_latency")
    data = latency_series(rows)
    names = data["layers"]
    longest = (
        max(data["latency_ms"] + [k for k in data["latency_ms_kernels"] if k is not None]) or 1
    )
    figure = new_figure(7.0 + max(len(n) for n in names) * 0.05, 1.5 + 0.45 * len(names))
    ax = figure.subplots()
    positions = range(len(names))
    ax.barh(
        [p - BAR_HEIGHT / 2 for p in positions],
        data["latency_ms"],
        height=BAR_HEIGHT,
        color=DEFAULT_COLOR,
        label="default interpreter (XNNPACK)",
    )
    kernels = [0 if k is None else k for k in data["latency_ms_kernels"]]
    ax.barh(
        [p + BAR_HEIGHT / 2 for p in positions],
        kernels,
        height=BAR_HEIGHT,
        color=KERNELS_COLOR,
        label="tfcompress kernels",
    )
    pad = 0.01 * longest
    for p, default, k in zip(positions, data["latency_ms"], data["latency_ms_kernels"]):
        ax.text(default + pad, p - BAR_HEIGHT / 2, f"{default:.3g} ms", va="center", fontsize=7)
        if k is None:
            text = "not claimed"
        else:
            text = f"{k:.3g} ms" + (f" ({default / k:.2f}x)" if k > 0 else "")
        ax.text((k or 0) + pad, p + BAR_HEIGHT / 2, text, va="center", fontsize=7)
    ax.set_yticks(list(positions), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first layer on top
    ax.set_xlim(0, longest * 1.4)
    ax.set_axisbelow(True)
    ax.set_xlabel("latency (ms)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, axis="x", color="0.9", linewidth=0.6)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=11)
    if note:
        figure.supxlabel(note, fontsize=8, color="0.4")
    save_png(figure, path)
    return data
