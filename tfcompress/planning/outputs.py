"""The files `compress` writes into its output folder, each atomically, plots and HTML too."""

from __future__ import annotations

import json
import os
import tempfile

import keras

from tfcompress.export import format_comparison
from tfcompress.planning.compression_result import CompressionResult
from tfcompress.planning.latency_cache import cpu_model_name
from tfcompress.planning.sensitivity_result import Sensitivity
from tfcompress.reporting.html import html_report
from tfcompress.reporting.plots import (
    plot_choices,
    plot_layer_latency,
    plot_sensitivity,
    plot_tradeoff,
)
from tfcompress.utils.io import TEMP_PREFIX, atomic_write_bytes, atomic_write_text


def save_keras(model: keras.Model, path: str) -> str:
    """`model.save` to a temporary `.keras` beside `path`, renamed over it when complete."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".keras", dir=os.path.dirname(path))
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def cpu_note() -> str:
    """Which machine measured the latencies, for the plots."""
    return f"measured on {cpu_model_name()}, {os.cpu_count()} cores"


def _option_key(entry: dict) -> str | None:
    """The Sensitivity option key of a recipe layer's main change (None: unchanged)."""
    prune = entry.get("prune")
    if prune:
        return f"prune:{prune['structure']}:{prune['sparsity']:g}"
    if entry.get("rank"):
        return f"rank:{entry['rank']}"
    return "bits:4" if entry.get("bits") == 4 else None


def latency_rows(sensitivity: Sensitivity, recipe: dict) -> list[dict]:
    """Per layer, the measured one-op latency of what the recipe chose (the unchanged
    layer's when it chose nothing the sensitivity measured), with and without our kernels."""
    rows = []
    for layer in sensitivity.layers:
        key = _option_key((recipe.get("layers") or {}).get(layer) or {})
        found = [
            e for e in sensitivity.entries if e.layer == layer and e.option and e.option.key == key
        ]
        entry = found[0] if found else sensitivity.baseline(layer)
        if entry.latency_ms is not None:
            rows.append(
                {
                    "layer": layer,
                    "choice": key or "int8",
                    "latency_ms": entry.latency_ms,
                    "latency_ms_kernels": entry.latency_ms_kernels,
                }
            )
    return rows


def _tradeoff_points(result: CompressionResult) -> list[dict]:
    before, after = result.report.before.summary, result.report.after.summary
    latency = result.kernels["kernels_ms"] if result.kernels else after.get("latency_ms")
    return [
        {
            "label": "original (float32)",
            "kind": "original",
            "gzip_bytes": before["gzip_bytes"],
            "latency_ms": before.get("latency_ms"),
            "accuracy": before["tflite_accuracy"],
        },
        {
            "label": "compressed",
            "kind": "planned",
            "gzip_bytes": after["gzip_bytes"],
            "latency_ms": latency,
            "accuracy": after["tflite_accuracy"],
        },
    ]


def write_plots(folder: str, result: CompressionResult, sensitivity: Sensitivity | None) -> dict:
    """The PNGs under `folder/plots`: name -> (path, the data drawn)."""
    plots = os.path.join(folder, "plots")
    os.makedirs(plots, exist_ok=True)
    note = cpu_note()
    recipe = result.recipe.to_dict()
    points = _tradeoff_points(result)
    drawn = {
        "accuracy_vs_size": plot_tradeoff(points, os.path.join(plots, "accuracy_vs_size.png")),
        "accuracy_vs_latency": plot_tradeoff(
            points, os.path.join(plots, "accuracy_vs_latency.png"), x="latency_ms", note=note
        ),
    }
    choices = result.recipe.plan_info or recipe
    if choices.get("layers"):
        drawn["choices"] = plot_choices(choices, os.path.join(plots, "choices.png"))
    if sensitivity is not None:
        path = os.path.join(plots, "sensitivity.png")
        drawn["sensitivity"] = plot_sensitivity(sensitivity.to_dict(), path)
        rows = latency_rows(sensitivity, recipe)
        if rows:
            path = os.path.join(plots, "layer_latency.png")
            drawn["layer_latency"] = plot_layer_latency(rows, path, note=note)
    return {name: (os.path.join(plots, f"{name}.png"), data) for name, data in drawn.items()}


def write_outputs(
    folder: str,
    original: keras.Model,
    float_bytes: bytes,
    result: CompressionResult,
    sensitivity: Sensitivity | None,
) -> dict[str, str]:
    """Every output file but `result.json` (written last, by `compress`); name -> path."""
    path = lambda name: os.path.join(folder, name)  # noqa: E731
    files = {
        "original.keras": save_keras(original, path("original.keras")),
        "compressed.keras": save_keras(result.model, path("compressed.keras")),
        "float32.tflite": atomic_write_bytes(path("float32.tflite"), float_bytes),
        "model.tflite": atomic_write_bytes(path("model.tflite"), result.tflite),
        "recipe.yaml": result.recipe.to_file(path("recipe.yaml")),
    }
    if sensitivity is not None:
        files["sensitivity.json"] = sensitivity.save(path("sensitivity.json"))
    comparison = result.report
    files["report.txt"] = atomic_write_text(path("report.txt"), comparison.to_text())
    files["report.md"] = atomic_write_text(path("report.md"), comparison.to_markdown())
    files["report.json"] = atomic_write_text(path("report.json"), comparison.to_json())
    if result.kernels is not None:
        text = json.dumps(result.kernels, indent=2)
        files["kernels.json"] = atomic_write_text(path("kernels.json"), text)
    plots = write_plots(folder, result, sensitivity)
    files.update({f"plots/{name}.png": png for name, (png, _) in plots.items()})
    files["report.html"] = html_report(
        "tfcompress: compression report", _html_sections(result, plots), path("report.html")
    )
    files["result.json"] = path("result.json")
    return files


def _html_sections(result: CompressionResult, plots: dict) -> list[dict]:
    sections = [{"heading": "Before and after", "preformatted": result.report.to_text()}]
    if result.targets:
        rows = [[name, t["limit"], t["predicted"], t["measured"], "yes" if t["met"] else "NO"]
                for name, t in result.targets.items()]  # fmt: skip
        headers = ["target", "limit", "predicted", "measured", "met"]
        sections.append({"heading": "Targets", "table": {"headers": headers, "rows": rows}})
    if len(result.attempts) > 1:
        sections.append({"heading": "Plans run", "table": _attempts_table(result.attempts)})
    sections.append({"heading": "Recipe", "preformatted": result.recipe.to_yaml()})
    notes = list(result.notes)
    if result.agreement is not None:
        notes.insert(
            0, f"Top-1 agreement of the .tflite with its Keras model: {result.agreement:.1%}."
        )
    sections.append({"heading": "Verification", "text": "\n\n".join(notes)})
    if result.kernels is not None:
        sections.append(
            {"heading": "Our int8 kernels", "preformatted": format_comparison(result.kernels)}
        )
    for name, (png, _) in plots.items():
        sections.append({"image": png, "caption": name.replace("_", " ")})
    return sections


def _attempts_table(attempts: list[dict]) -> dict:
    """One row per plan `compress` ran for the target: what it was planned for, what it
    changed, what it missed as measured, and whether it is the one kept."""
    rows = []
    for number, attempt in enumerate(attempts, 1):
        planned = ", ".join(
            f"{name} {attempt['planned_for'][name]:,.4g} (x{factor:.3g})"
            for name, factor in attempt["correction"].items()
        )
        missed = [name for name, t in attempt["targets"].items() if not t["met"]]
        rows.append(
            [
                number,
                planned or "the target as given",
                ", ".join(attempt["layers"]) or "none",
                ", ".join(missed) or "none",
                "yes" if attempt["kept"] else "",
            ]
        )
    return {"headers": ["plan", "planned for", "layers changed", "missed", "kept"], "rows": rows}
