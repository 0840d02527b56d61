"""`plot_choices`: the sparsity, bits and rank a plan (or a recipe) chose per layer."""

from __future__ import annotations

import os
from collections.abc import Mapping

from tfcompress.reporting.figures import check_png_path, new_figure, number, save_png

BAR_COLOR = {"sparsity": "#4c72b0", "bits": "#dd8452", "rank": "#55a868"}


def _choices(plan_info) -> list[tuple[str, Mapping]]:
    """(layer, choice) pairs from `plan_info['layers']`, a list or a mapping."""
    if not isinstance(plan_info, Mapping) or "layers" not in plan_info:
        raise TypeError(
            "`plan_info` must be a dict with a 'layers' entry (Recipe.plan_info, or "
            f"Recipe.to_dict()). Received: {type(plan_info).__name__}"
            + (f" with keys {sorted(plan_info)}" if isinstance(plan_info, Mapping) else "")
        )
    layers = plan_info["layers"]
    if isinstance(layers, Mapping):
        pairs = list(layers.items())
    elif isinstance(layers, list):
        pairs = []
        for i, choice in enumerate(layers):
            if not isinstance(choice, Mapping) or not isinstance(choice.get("layer"), str):
                raise ValueError(
                    f"`plan_info['layers'][{i}]` must be a dict with a 'layer' name. "
                    f"Received: {choice!r:.120}"
                )
            pairs.append((choice["layer"], choice))
    else:
        raise TypeError(
            "`plan_info['layers']` must be a list of per-layer dicts or a mapping "
            f"layer -> choice. Received: {type(layers).__name__}"
        )
    if not pairs:
        raise ValueError("`plan_info['layers']` is empty: no layer choice to plot.")
    for layer, choice in pairs:
        if choice is not None and not isinstance(choice, Mapping):
            raise ValueError(
                f"`plan_info['layers']` entry of layer {layer!r} must be a dict (or None: "
                f"unchanged). Received: {choice!r:.120}"
            )
    return [(layer, choice or {}) for layer, choice in pairs]


def _prune(choice: Mapping, where: str) -> tuple[Mapping, str]:
    """A layer's pruning `{"structure", "sparsity"}` (empty when none) and where it was read:
    nested under `"prune"` (the Recipe's form) or flat in the choice (`plan_info`'s form)."""
    if "prune" not in choice:
        return choice, where
    if "sparsity" in choice or "structure" in choice:
        raise ValueError(
            f"`{where}` gives the pruning twice: under 'prune' and as 'sparsity'/'structure'. "
            f"Received keys: {sorted(choice)}"
        )
    prune = choice["prune"]
    if prune is not None and not isinstance(prune, Mapping):
        raise ValueError(
            f"`{where}['prune']` must be a dict {{'structure', 'sparsity'}} or None. "
            f"Received: {prune!r:.120}"
        )
    return prune or {}, f"{where}['prune']"


def choice_series(plan_info: dict) -> dict:
    """The data `plot_choices` draws, without drawing it (same format as its return)."""
    series = {"layers": [], "sparsity": [], "structure": [], "bits": [], "rank": []}
    for layer, choice in _choices(plan_info):
        where = f"plan_info['layers'][{layer!r}]"
        prune, prune_where = _prune(choice, where)
        sparsity = number(prune.get("sparsity"), f"{prune_where}['sparsity']")
        if sparsity is not None and not 0 <= sparsity <= 1:
            raise ValueError(
                f"`{prune_where}['sparsity']` must be a fraction in [0, 1]. Received: {sparsity!r}"
            )
        bits = number(choice.get("bits"), f"{where}['bits']")
        rank = number(choice.get("rank"), f"{where}['rank']")
        series["layers"].append(layer)
        series["sparsity"].append(sparsity)
        series["structure"].append(prune.get("structure"))
        series["bits"].append(None if bits is None else int(bits))
        series["rank"].append(None if rank is None else int(rank))
    series["binding"] = plan_info.get("binding")
    return series


def _bars(ax, names: list[str], values: list, labels: list[str], color: str, title: str) -> None:
    positions = range(len(names))
    ax.barh(positions, [0 if v is None else v for v in values], color=color, height=0.6)
    top = max([v for v in values if v is not None], default=0) or 1
    for y, value, label in zip(positions, values, labels):
        ax.text((value or 0) + 0.02 * top, y, label, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.35)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(True, axis="x", color="0.9", linewidth=0.6)


def plot_choices(plan_info: dict, path: str | os.PathLike, note: str | None = None) -> dict:
    """Per-layer choices as horizontal bars: sparsity (with its structure), bits, rank.

    The rank panel appears only when some layer is factorized. A layer with
    no pruning shows 0% and "dense"; no bits or rank shows "-" (the export's
    default, e.g. int8).

    Args:
        plan_info: A dict with `"layers"`: a mapping layer -> choice in
            model order, or a list of choices each with `"layer"` (str). A
            choice is `{"structure": str | None, "sparsity": float, "bits":
            8 | 4 | None, "rank": int | None}` (the planner's
            `Recipe.plan_info`), or has the pruning nested as `"prune":
            {"structure", "sparsity"} | None` (`Recipe.to_dict()`'s
            `layers`); other keys (`"reason"`, `"cluster"`, costs) are
            ignored. Optional `"binding"` (the binding limit's name) goes in
            the title.
        path: The `.png` to write (atomically); its folder must exist.
        note: A line of small text under the plot (e.g. the CPU).

    Returns:
        The data drawn: `{"layers": [...], "sparsity": [fraction | None],
        "structure": [str | None], "bits": [int | None], "rank": [int |
        None], "binding": str | None}`, one item per layer in the given order.

    Example:
        >>> from tfcompress.reporting.plots import plot_choices
        >>> info = {"binding": "max_gzip_bytes", "layers": {
        ...     "conv2": {"structure": "16x4", "sparsity": 0.8, "bits": 8, "rank": None},
        ...     "fc1": {"structure": "unstructured", "sparsity": 0.95, "bits": 4, "rank": None,
        ...             "reason": "largest layer, least sensitive"}}}
        >>> plot_choices(info, "choices.png")["sparsity"]
        [0.8, 0.95]
    """
    path = check_png_path(path, "plot_choices")
    data = choice_series(plan_info)
    names = data["layers"]
    panels = ["sparsity", "bits"] + (["rank"] if any(r is not None for r in data["rank"]) else [])
    width = max(len(n) for n in names) * 0.07 + 2.6 * len(panels)
    figure = new_figure(max(6.0, width), 1.3 + 0.32 * len(names))
    ratios = [1.5] + [1] * (len(panels) - 1)  # the sparsity panel's labels are the longest
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False, width_ratios=ratios)[0]
    percent = [None if s is None else 100 * s for s in data["sparsity"]]
    sparsity_labels = [
        "dense" if s is None or s == 0 else f"{100 * s:.0f}% {structure or ''}".rstrip()
        for s, structure in zip(data["sparsity"], data["structure"])
    ]
    _bars(axes[0], names, percent, sparsity_labels, BAR_COLOR["sparsity"], "sparsity (%)")
    axes[0].set_xlim(0, 150)  # room for the labels; ticks stop at 100%
    axes[0].set_xticks(range(0, 101, 25))
    for ax, key in zip(axes[1:], panels[1:]):
        labels = ["-" if v is None else str(v) for v in data[key]]
        _bars(ax, names, data[key], labels, BAR_COLOR[key], "weight bits" if key == "bits" else key)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_ylim(len(names) - 0.5, -0.5)  # the first layer on top
    title = "Per-layer choices"
    if data["binding"]:
        title += f" (binding constraint: {data['binding']})"
    figure.suptitle(title, fontsize=11)
    if note:
        figure.supxlabel(note, fontsize=8, color="0.4")
    save_png(figure, path)
    return data
