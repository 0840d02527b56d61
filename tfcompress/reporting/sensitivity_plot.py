"""`plot_sensitivity`: per-layer sensitivity curves from a Sensitivity's JSON."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from tfcompress.reporting.figures import (
    check_png_path,
    drawable,
    layer_colors,
    legend_columns,
    new_figure,
    number,
    save_png,
)

PRUNE_STRUCTURES = ("unstructured", "16x4", "2:4", "channels")
METRICS = {
    "accuracy_drop": "accuracy drop (points)",
    "kl": "KL(original || changed)",
    "agreement": "top-1 agreement with the original",
}
X_LABELS = {
    "sparsity": "sparsity (%)",
    "bits": "weight bits (fewer to the right)",
    "energy": "singular-value energy kept (%, less to the right)",
    "rank": "rank kept (lower to the right)",
}
PANELS_PER_ROW = 3
LEGEND_ROW_INCHES = 0.2


def _entries(sensitivity_json) -> list[Mapping]:
    if isinstance(sensitivity_json, (str, bytes)):
        raise TypeError(
            "`sensitivity_json` must be the parsed dict, e.g. json.loads(sensitivity.to_json()). "
            f"Received: a {type(sensitivity_json).__name__} of length {len(sensitivity_json)}"
        )
    if not isinstance(sensitivity_json, Mapping) or "entries" not in sensitivity_json:
        raise TypeError(
            "`sensitivity_json` must be a dict with an 'entries' list (Sensitivity.to_json()). "
            f"Received: {type(sensitivity_json).__name__}"
            + (
                f" with keys {sorted(sensitivity_json)}"
                if isinstance(sensitivity_json, Mapping)
                else ""
            )
        )
    entries = sensitivity_json["entries"]
    if not isinstance(entries, list) or not entries:
        raise ValueError(
            f"`sensitivity_json['entries']` must be a non-empty list. Received: {entries!r:.80}"
        )
    for i, entry in enumerate(entries):
        where = f"sensitivity_json['entries'][{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("layer"), str):
            raise ValueError(
                f"`{where}` must be a dict with a 'layer' name. Received: {entry!r:.120}"
            )
        option = entry.get("option")
        if option is not None and (
            not isinstance(option, Mapping) or option.get("kind") not in ("prune", "bits", "rank")
        ):
            raise ValueError(
                f"`{where}['option']` (layer {entry['layer']!r}) must be None (the baseline) or a "
                f"dict whose 'kind' is 'prune', 'bits' or 'rank'. Received: {option!r:.120}"
            )
    return entries


def _metric(entries: list[Mapping], metric: str) -> str:
    changed = [e for e in entries if e.get("option") is not None]
    if not changed:
        raise ValueError(
            "`sensitivity_json['entries']` holds only baselines (option None): nothing to plot."
        )
    has_drop = any(e.get("accuracy_drop") is not None for e in changed)
    if metric == "auto":
        return "accuracy_drop" if has_drop else "kl"
    if metric not in METRICS:
        raise ValueError(
            f"`metric` must be 'auto' or one of {sorted(METRICS)}. Received: {metric!r}"
        )
    if metric == "accuracy_drop" and not has_drop:
        raise ValueError(
            "`metric`='accuracy_drop' but no entry has an accuracy drop (the sensitivity was "
            "measured without labels): use metric='kl' or 'agreement'."
        )
    return metric


def _panel(option: Mapping, where: str) -> tuple[str, str, float]:
    """(panel name, x field of the option, its value) of one option."""
    kind = option["kind"]
    if kind == "prune":
        if not isinstance(option.get("structure"), str):
            raise ValueError(
                f"`{where}['option']['structure']` must name the pruning structure. "
                f"Received: {option.get('structure')!r}"
            )
        name, field = f"prune {option['structure']}", "sparsity"
    elif kind == "bits":
        name, field = "bits", "bits"
    elif option.get("energy") is not None:
        name, field = "rank", "energy"
    else:
        name, field = "rank (kept rank)", "rank"
    value = number(option.get(field), f"{where}['option']['{field}']")
    if value is None:
        raise ValueError(f"`{where}['option']['{field}']` is missing: a {kind} option needs it.")
    return name, field, value


def _panel_order(name: str) -> tuple:
    if name.startswith("prune "):
        structure = name[len("prune ") :]
        known = structure in PRUNE_STRUCTURES
        return (0, PRUNE_STRUCTURES.index(structure) if known else len(PRUNE_STRUCTURES), name)
    return (1 if name == "bits" else 2, 0, name)


def _layer_order(sensitivity_json: Mapping, entries: list[Mapping]) -> list[str]:
    """The layers in model order (`sensitivity_json['layers']` when given), then any others."""
    listed = sensitivity_json.get("layers")
    names = [n for n in listed if isinstance(n, str)] if isinstance(listed, list) else []
    for entry in entries:
        if entry["layer"] not in names:
            names.append(entry["layer"])
    return names


def sensitivity_series(sensitivity_json: dict, metric: str = "auto") -> dict:
    """The data `plot_sensitivity` draws, without drawing it (same format as its return)."""
    entries = _entries(sensitivity_json)
    metric = _metric(entries, metric)
    order = {name: i for i, name in enumerate(_layer_order(sensitivity_json, entries))}
    panels: dict[str, dict] = {}
    for i, entry in enumerate(entries):
        option, layer = entry.get("option"), entry["layer"]
        if option is None:
            continue
        where = f"sensitivity_json['entries'][{i}]"
        name, x_name, x = _panel(option, where)
        y = number(entry.get(metric), f"{where}['{metric}']")
        what = f"entry {i} (layer {layer!r}, option {option.get('key', name)!r})"
        x_argument = f"{where}['option']['{x_name}']"
        if not drawable(x, x_argument, "plot_sensitivity", what):
            continue
        if not drawable(y, f"{where}['{metric}']", "plot_sensitivity", what):
            continue
        panel = panels.setdefault(name, {"name": name, "x": x_name, "series": {}})
        series = panel["series"].setdefault(layer, {"layer": layer, "x": [], "y": [], "keys": []})
        series["x"].append(x)
        series["y"].append(y)
        series["keys"].append(option.get("key"))
    if not panels:
        raise ValueError(f"`sensitivity_json`: no entry has a finite {metric!r} to plot.")
    result = []
    for name in sorted(panels, key=_panel_order):
        panel = panels[name]
        series = []
        for layer in sorted(panel["series"], key=order.__getitem__):
            s = panel["series"][layer]
            points = sorted(zip(s["x"], s["y"], s["keys"]), key=lambda p: p[0])
            series.append(
                {"layer": layer, **dict(zip(("x", "y", "keys"), map(list, zip(*points))))}
            )
        result.append({"name": name, "x": panel["x"], "series": series})
    return {"metric": metric, "panels": result}


def _draw_panel(
    ax, panel: dict, metric: str, colors: dict[str, str], sparsity_range: tuple[float, float]
) -> None:
    percent = panel["x"] in ("sparsity", "energy")
    for s in panel["series"]:
        xs = [100 * v for v in s["x"]] if percent else s["x"]
        ys = [100 * v for v in s["y"]] if metric == "agreement" else s["y"]
        ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.4, color=colors[s["layer"]])
    ax.axhline(100 if metric == "agreement" else 0, color="0.75", linewidth=0.8, zorder=0)
    if panel["x"] in ("bits", "energy", "rank"):
        ax.invert_xaxis()  # more compression to the right in every panel
    if panel["x"] == "sparsity":  # the same range in every pruning panel
        ax.set_xlim(*sparsity_range)
    if panel["x"] == "bits":
        ax.set_xticks(sorted({b for s in panel["series"] for b in s["x"]}))
    ax.set_title(panel["name"], fontsize=10)
    ax.set_xlabel(X_LABELS[panel["x"]], fontsize=9)
    ax.set_ylabel(METRICS[metric] + (" (%)" if metric == "agreement" else ""), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="0.9", linewidth=0.6)


def plot_sensitivity(sensitivity_json: dict, path: str | os.PathLike, metric: str = "auto") -> dict:
    """Per-layer sensitivity curves: one panel per option family, one line per layer.

    Panels: one per pruning structure (x: sparsity), one for weight bits and
    one for factorization rank (x: energy kept, or the rank when no energy is
    given), compression increasing to the right in each; y: `metric`. Only one
    layer is changed per point (no retraining), so the curves say which
    layers tolerate what. Baseline entries (option None) are not drawn; an
    entry whose value is None, NaN or infinite is left out with a warning naming it.

    Args:
        sensitivity_json: `json.loads(Sensitivity.to_json())`: a dict with
            `"entries"`, a list of dicts with `"layer"` (str), `"option"`
            (None for the baseline, else a dict with `"kind"` in
            `"prune" | "bits" | "rank"`, `"structure"`, `"sparsity"`, `"bits"`,
            `"rank"`, `"energy"`, `"key"`) and the measures `"accuracy_drop"`
            (points, None without labels), `"kl"` and `"agreement"` (0 to 1);
            other entry fields (costs) are ignored. Optional: `"layers"` (model
            order of the legend) and `"model"` (`"name"` and `"cpu"` go in
            the title).
        path: The `.png` to write (atomically); its folder must exist.
        metric: `"accuracy_drop"`, `"kl"`, `"agreement"`, or `"auto"`
            (accuracy drop when any entry has one, else KL).

    Returns:
        The data drawn: `{"metric": str, "panels": [{"name": "prune 16x4",
        "x": "sparsity" | "bits" | "energy" | "rank", "series": [{"layer":
        str, "x": [...], "y": [...], "keys": [option keys]}]}]}`, each series
        sorted by x, numbers in the JSON's units (fractions, not percent).

    Example:
        >>> from tfcompress.reporting.plots import plot_sensitivity
        >>> def entry(layer, sparsity, drop):
        ...     option = {"kind": "prune", "structure": "16x4", "sparsity": sparsity,
        ...               "bits": None, "rank": None, "energy": None,
        ...               "key": f"prune:16x4:{sparsity}"}
        ...     return {"layer": layer, "option": option, "accuracy_drop": drop,
        ...             "kl": drop / 10, "agreement": 1 - drop / 100}
        >>> data = {"entries": [entry("fc1", 0.5, 0.1), entry("fc1", 0.9, 2.5),
        ...                     entry("fc2", 0.5, 0.4)]}
        >>> series = plot_sensitivity(data, "sensitivity.png")
        >>> fc1 = series["panels"][0]["series"][0]
        >>> fc1["layer"], fc1["x"], fc1["y"]
        ('fc1', [0.5, 0.9], [0.1, 2.5])
    """
    path = check_png_path(path, "plot_sensitivity")
    data = sensitivity_series(sensitivity_json, metric)
    layers = _layer_order(sensitivity_json, sensitivity_json["entries"])
    drawn = [s["layer"] for p in data["panels"] for s in p["series"]]
    layers = [name for name in layers if name in drawn]
    colors = layer_colors(layers)
    panels = data["panels"]
    columns = min(PANELS_PER_ROW, len(panels))
    rows = math.ceil(len(panels) / columns)
    legend_cols = legend_columns(len(layers))
    legend_rows = math.ceil(len(layers) / legend_cols)
    longest = max(len(name) for name in layers)
    legend_width = legend_cols * (0.6 + 0.065 * longest)
    height = max(3.1 * rows + 0.5, LEGEND_ROW_INCHES * legend_rows + 1.0)
    panels_width = max(3.9 * columns, 4.5)
    figure = new_figure(panels_width + legend_width, height)
    plots, legend = figure.subfigures(1, 2, width_ratios=[panels_width, legend_width])
    axes = plots.subplots(rows, columns, squeeze=False).ravel()
    sparsities = [v for p in panels if p["x"] == "sparsity" for s in p["series"] for v in s["x"]]
    low = 100 * min(sparsities, default=0)
    sparsity_range = (low - 0.1 * (100 - low) - 1, 101)
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, panel, data["metric"], colors, sparsity_range)
    for ax in axes[len(panels) :]:
        ax.remove()
    handles = [
        axes[0].plot([], [], marker="o", color=colors[name], label=name)[0] for name in layers
    ]
    legend.legend(handles=handles, loc="upper left", fontsize=8, title="layer", ncols=legend_cols)
    model = sensitivity_json.get("model")
    model = model if isinstance(model, Mapping) else {}
    plots.suptitle("Sensitivity" + (f" of {model['name']}" if model.get("name") else ""))
    note = "one layer changed at a time, no retraining"
    if model.get("cpu"):
        note += f"; CPU: {model['cpu']}"
    plots.supxlabel(note, fontsize=8, color="0.4")
    save_png(figure, path)
    return data
