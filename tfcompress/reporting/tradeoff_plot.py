"""`plot_tradeoff`: accuracy against size or latency for the original, baselines and plan."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tfcompress.reporting.figures import (
    annotate_points,
    check_png_path,
    drawable,
    new_figure,
    number,
    save_png,
)

X_AXES = {
    "gzip_bytes": ".tflite gzip bytes",
    "bytes": ".tflite bytes",
    "latency_ms": "latency (ms, batch 1)",
    "macs": "MACs per sample",
}
Y_AXES = {"accuracy": "accuracy (%)", "agreement": "top-1 agreement with the original (%)"}
KINDS = {  # marker, colour, size
    "original": ("*", "black", 14),
    "uniform": ("o", "#4c72b0", 7),
    "planned": ("D", "#c44e52", 8),
}
UNIFORM_COLORS = ("#4c72b0", "#55a868", "#8172b3", "#937860", "#64b5cd", "#da8bc3")
LOG_SCALE_RATIO = 10  # a log x axis when the largest x is this many times the smallest


def _checked_point(point, i: int, x: str, y: str) -> dict | None:
    """One point as `{"label", "kind", "group", "x", "y"}`; None (warned) when not drawable."""
    where = f"points[{i}]"
    if not isinstance(point, Mapping):
        raise TypeError(f"`{where}` must be a dict. Received: {point!r:.120}")
    label = point.get("label")
    if not isinstance(label, str):
        raise ValueError(f"`{where}['label']` must be a string. Received: {label!r}")
    kind = point.get("kind")
    if kind not in KINDS:
        raise ValueError(
            f"`{where}['kind']` (point {label!r}) must be one of {list(KINDS)}. Received: {kind!r}"
        )
    values = {}
    for axis in (x, y):
        value = number(point.get(axis), f"{where}[{axis!r}]")
        if not drawable(value, f"{where}[{axis!r}]", "plot_tradeoff", f"point {label!r}"):
            return None
        values[axis] = value
    if not 0 <= values[y] <= 1:
        raise ValueError(
            f"`{where}[{y!r}]` (point {label!r}) must be a fraction in [0, 1]. "
            f"Received: {values[y]!r}"
        )
    if values[x] < 0:
        raise ValueError(f"`{where}[{x!r}]` (point {label!r}) is negative: {values[x]!r}")
    group = point.get("group", kind)
    return {"label": label, "kind": kind, "group": group, "x": values[x], "y": values[y]}


def tradeoff_series(points: list[dict], x: str = "gzip_bytes", y: str = "accuracy") -> dict:
    """The data `plot_tradeoff` draws, without drawing it (same format as its return)."""
    if x not in X_AXES:
        raise ValueError(f"`x` must be one of {list(X_AXES)}. Received: x={x!r}")
    if y not in Y_AXES:
        raise ValueError(f"`y` must be one of {list(Y_AXES)}. Received: y={y!r}")
    if not isinstance(points, (list, tuple)) or not points:
        raise ValueError(f"`points` must be a non-empty list of dicts. Received: {points!r:.80}")
    drawn, skipped = [], []
    for i, point in enumerate(points):
        checked = _checked_point(point, i, x, y)
        (drawn if checked else skipped).append(checked or point["label"])
    if not drawn:
        raise ValueError(f"`points`: none has finite {x!r} and {y!r} values. Left out: {skipped}")
    xs = [p["x"] for p in drawn]
    positive = min(xs) > 0
    scale = "log" if positive and max(xs) >= LOG_SCALE_RATIO * min(xs) else "linear"
    return {"x": x, "y": y, "x_scale": scale, "points": drawn, "skipped": skipped}


def _groups(points: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for p in points:
        groups.setdefault((p["kind"], p["group"]), []).append(p)
    return groups


def plot_tradeoff(
    points: list[dict],
    path: str | os.PathLike,
    x: str = "gzip_bytes",
    y: str = "accuracy",
    note: str | None = None,
) -> dict:
    """Accuracy against size (or latency) of the original, uniform baselines and the plan.

    Each point is a marker labelled with its `label`; uniform points of the
    same `group` are joined by a line (sorted by x), so a baseline sweep
    reads as a curve. The x axis is logarithmic when the largest x is at
    least 10 times the smallest. A point whose x or y is NaN or infinite is
    left out with a warning naming it, and so is one without a value (None or
    no key: not measured); no point left to draw is an error.

    Args:
        points: Dicts `{"label": str, "kind": "original" | "uniform" |
            "planned", "gzip_bytes": int, "latency_ms": float, "accuracy":
            float (a fraction, 0 to 1)}`, optionally `"bytes"`, `"macs"`,
            `"agreement"` (0 to 1) for the other axes, and `"group"` (str:
            which uniform sweep the point belongs to; default its kind).
            Only the keys of `x` and `y` are read.
        path: The `.png` to write (atomically); its folder must exist.
        x: `"gzip_bytes"`, `"bytes"`, `"latency_ms"` or `"macs"`.
        y: `"accuracy"` or `"agreement"`.
        note: A line of small text under the plot (say which CPU measured
            latencies).

    Returns:
        The data drawn: `{"x": x, "y": y, "x_scale": "log" | "linear",
        "points": [{"label", "kind", "group", "x", "y"}], "skipped": [labels
        left out]}`, values in the points' units (accuracy as a fraction).

    Example:
        >>> from tfcompress.reporting.plots import plot_tradeoff
        >>> points = [
        ...     {"label": "float", "kind": "original", "gzip_bytes": 980_000, "accuracy": 0.97},
        ...     {"label": "16x4 80%", "kind": "uniform", "gzip_bytes": 60_000, "accuracy": 0.95},
        ...     {"label": "planned", "kind": "planned", "gzip_bytes": 24_000, "accuracy": 0.965}]
        >>> data = plot_tradeoff(points, "size.png")
        >>> [p["x"] for p in data["points"]], data["x_scale"]
        ([980000.0, 60000.0, 24000.0], 'log')
    """
    path = check_png_path(path, "plot_tradeoff")
    data = tradeoff_series(points, x, y)
    figure = new_figure(7.0, 4.6)
    ax = figure.subplots()
    uniform_groups = 0
    for (kind, group), members in _groups(data["points"]).items():
        marker, color, size = KINDS[kind]
        if kind == "uniform":
            color = UNIFORM_COLORS[uniform_groups % len(UNIFORM_COLORS)]
            uniform_groups += 1
        members = sorted(members, key=lambda p: p["x"])
        xs, ys = [p["x"] for p in members], [100 * p["y"] for p in members]
        joined = kind == "uniform" and len(members) > 1
        name = kind if group == kind else f"{kind}: {group}"
        ax.plot(
            xs,
            ys,
            linestyle="-" if joined else "none",
            linewidth=1.2,
            marker=marker,
            markersize=size,
            color=color,
            alpha=0.9,
            label=name,
        )
    ax.set_xscale(data["x_scale"])
    if data["x_scale"] == "log":
        ax.set_xlim(
            min(p["x"] for p in data["points"]) / 1.6, max(p["x"] for p in data["points"]) * 2.2
        )
    ax.set_xlabel(X_AXES[x] + (" (log scale)" if data["x_scale"] == "log" else ""), fontsize=9)
    ax.set_ylabel(Y_AXES[y], fontsize=9)
    ax.margins(x=0.12, y=0.15)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{Y_AXES[y].split(' (')[0]} vs {X_AXES[x].split(' (')[0]}", fontsize=11)
    if note:
        figure.supxlabel(note, fontsize=8, color="0.4")
    annotate_points(figure, ax, [(p["label"], p["x"], 100 * p["y"]) for p in data["points"]])
    save_png(figure, path)
    return data
