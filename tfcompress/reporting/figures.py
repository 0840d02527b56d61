"""Matplotlib figures without pyplot: an Agg canvas, atomic PNG files, checked numbers.

A `Figure` with its own `FigureCanvasAgg` draws without a display, selects no backend and
keeps no global figure registry, so plotting never changes the user's matplotlib state.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import warnings

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from tfcompress.utils.io import atomic_write_bytes, check_output_path

DPI = 110
LAYER_PALETTE_SIZE = 10  # tab10 up to this many layers, tab20 up to twice that, then a gradient


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of `width` x `height` inches on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | os.PathLike, argument: str = "path") -> str:
    """Renders `figure` as PNG into memory, then writes it atomically to `path`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue(), argument)


def check_png_path(path: str | os.PathLike, function: str) -> str:
    """`path` as a string; its folder must exist and its name end in `.png`."""
    path = check_output_path(path, "path")
    if not path.lower().endswith(".png"):
        raise ValueError(f"`{function}` writes a PNG: `path` must end in .png. Received: {path!r}")
    return path


def number(value, argument: str) -> float | None:
    """`value` as a float (None stays None); anything else raises naming `argument`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{argument}` must be a number or None. Received: {argument}={value!r} "
            f"(type {type(value).__name__})"
        )
    return float(value)


def drawable(value: float | None, argument: str, function: str, what: str) -> bool:
    """Whether `value` can be drawn; None (not measured), NaN or infinity warn that `what`
    is left out."""
    if value is not None and math.isfinite(value):
        return True
    problem = " is None (not measured)" if value is None else f"={value!r}"
    warnings.warn(f"{function}: {argument}{problem}; {what} is left out.", stacklevel=3)
    return False


def layer_colors(names: list[str]) -> dict[str, str]:
    """A distinct colour per layer name, the same in every panel of a figure."""
    count = len(names)
    if count <= LAYER_PALETTE_SIZE:
        colors = colormaps["tab10"].colors[:count]
    elif count <= 2 * LAYER_PALETTE_SIZE:
        colors = colormaps["tab20"].colors[:count]
    else:
        gradient = colormaps["viridis"]
        colors = [gradient(i / (count - 1)) for i in range(count)]
    return {name: to_hex(color) for name, color in zip(names, colors)}


def legend_columns(count: int, per_column: int = 24) -> int:
    """Legend columns so that no column holds more than `per_column` entries."""
    return max(1, math.ceil(count / per_column))


LABEL_OFFSETS = ((6, 5, "left"), (6, -13, "left"), (-6, 5, "right"), (-6, -13, "right"))
MARKER_RADIUS_PX = 6


def annotate_points(figure: Figure, ax, points: list[tuple[str, float, float]]) -> None:
    """Labels each `(text, x, y)` point beside it, at the first of the four corners around
    it where the label covers no marker and no earlier label (the first corner when all do)."""
    figure.draw_without_rendering()  # settles the layout, so positions are final
    renderer = figure.canvas.get_renderer()
    taken = []
    for _, x, y in points:
        px, py = ax.transData.transform((x, y))
        r = MARKER_RADIUS_PX
        taken.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
    for text, x, y in points:
        boxes = []
        for dx, dy, align in LABEL_OFFSETS:
            label = ax.annotate(
                text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=align, fontsize=8
            )
            boxes.append(label.get_window_extent(renderer))
            label.remove()
        free = [i for i, box in enumerate(boxes) if not any(box.overlaps(t) for t in taken)]
        best = free[0] if free else 0
        dx, dy, align = LABEL_OFFSETS[best]
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=align, fontsize=8)
        taken.append(boxes[best])
