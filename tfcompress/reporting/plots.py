"""The report's PNG plots, drawn with matplotlib's Agg canvas (no display, no pyplot).

Each function takes plain dicts and lists (the numbers that also go into the JSON), writes
one PNG atomically and returns the data it drew, so callers can store exactly what a figure
shows:

- `plot_sensitivity(sensitivity_json, path)`: per-layer sensitivity curves.
- `plot_choices(plan_info, path)`: per-layer sparsity, bits and rank chosen.
- `plot_tradeoff(points, path, x="gzip_bytes", y="accuracy")`: accuracy vs size or latency.
- `plot_layer_latency(rows, path)`: per-layer latency with and without our kernels.

Each function's docstring gives the exact input and output formats; each has a
`*_series` twin in its module that returns the same data without drawing.
"""

from tfcompress.reporting.choices_plot import plot_choices
from tfcompress.reporting.latency_plot import plot_layer_latency
from tfcompress.reporting.sensitivity_plot import plot_sensitivity
from tfcompress.reporting.tradeoff_plot import plot_tradeoff

__all__ = ["plot_choices", "plot_layer_latency", "plot_sensitivity", "plot_tradeoff"]
