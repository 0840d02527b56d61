"""Tables and verdicts of benchmarks/distributed.py from its measured cells."""

from __future__ import annotations

import json
import os

from benchmarks.harness import write_results
from tfcompress.reporting.table import render_table

SENSITIVITY = os.path.join(os.path.dirname(__file__), "results", "distributed-sensitivity.json")
NOISE = 0.10  # one run on a shared 2-core box: ratios within 10% count as equal
NAMES = {"lenet": "LeNet-300-100", "small_cnn": "small CNN", "resnet50": "ResNet50 (32x32)"}


def _ratio(cells, model, technique, workers, base="plain"):
    top, bottom = cells.get((model, technique, workers)), cells.get((model, base, workers))
    if top is None or bottom is None:
        return None
    return top["median_step_ms"] / bottom["median_step_ms"]


def _fmt(value, unit="x") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def _ms(cells, key) -> str:
    return "-" if key not in cells else f"{cells[key]['median_step_ms']:.1f}"


def _step_rows(cells, models, workers) -> list[list[str]]:
    rows = []
    for model in models:
        first = cells.get((model, "plain", workers[0]))
        for n in workers:
            plain = cells.get((model, "plain", n))
            rows.append(
                [
                    NAMES[model],
                    str(n),
                    _ms(cells, (model, "plain", n)),
                    _ms(cells, (model, "pruned", n)),
                    _ms(cells, (model, "qat", n)),
                    _fmt(_ratio(cells, model, "pruned", n)),
                    _fmt(_ratio(cells, model, "qat", n)),
                    _fmt(_ratio(cells, model, "tfmot_pruned", n, "tfmot_plain")),
                    _fmt(
                        None
                        if plain is None or first is None
                        else plain["median_step_ms"] / first["median_step_ms"]
                    ),
                ]
            )
    return rows


def _memory_table(cells, models, workers) -> str:
    rows = []
    for model in models:
        plain = cells.get((model, "plain", workers[0]))
        for technique in ("plain", "pruned", "qat", "tfmot_plain", "tfmot_pruned"):
            found = [cells.get((model, technique, n)) for n in workers]
            if not any(found):
                continue
            size = next(c for c in found if c)["variable_bytes"]
            base = plain["variable_bytes"] if plain and not technique.startswith("tfmot") else None
            if technique == "tfmot_pruned" and cells.get((model, "tfmot_plain", workers[0])):
                base = cells[model, "tfmot_plain", workers[0]]["variable_bytes"]
            rss = [
                "-" if c is None else "/".join(f"{r:.0f}" for r in c["peak_rss_mib"]) for c in found
            ]
            rows.append(
                [NAMES[model], technique, f"{size / 2**20:.2f}", _fmt(base and size / base), *rss]
            )
    headers = ["model", "training", "variables (MiB)", "vs plain"]
    headers += [f"peak RSS per worker at {n} (MiB)" for n in workers]
    return render_table(headers, rows, markdown=True)


def _verdicts(cells, models, workers) -> list[str]:
    lines = []
    for model in models:
        for technique, label in (("pruned", "pruning"), ("qat", "QAT")):
            single = _ratio(cells, model, technique, workers[0])
            for n in workers[1:]:
                ratio = _ratio(cells, model, technique, n)
                if single is None or ratio is None:
                    continue
                met = ratio <= single * (1 + NOISE)
                lines.append(
                    f"- {NAMES[model]}, {label} overhead at {n} workers {ratio:.2f}x vs "
                    f"{single:.2f}x on {workers[0]}: {'met' if met else 'NOT met'}."
                )
        for n in workers:
            ours = _ratio(cells, model, "pruned", n)
            theirs = _ratio(cells, model, "tfmot_pruned", n, "tfmot_plain")
            if ours is None or theirs is None:
                continue
            met = ours <= theirs * (1 + NOISE)
            lines.append(
                f"- {NAMES[model]}, pruning overhead at {n} worker(s) {ours:.2f}x vs tfmot's "
                f"{theirs:.2f}x: {'met' if met else 'NOT met'}."
            )
    return lines


def _sensitivity_notes() -> str:
    """The table of benchmarks/sensitivity_processes.py's results, if it has run."""
    if not os.path.isfile(SENSITIVITY):
        return ""
    with open(SENSITIVITY) as f:
        data = json.load(f)
    rows, seconds = [], {}
    for r in data["results"]:
        seconds[r["model"], r["processes"]] = r["seconds"]
        one = seconds.get((r["model"], 1))
        equal = r.get("equal_to_1_process")
        rows.append(
            [
                NAMES[r["model"]],
                str(r["processes"]),
                f"{r['seconds']:.1f}",
                "-" if one is None else f"{one / r['seconds']:.2f}x",
                "-" if equal is None else ("yes" if equal else "NO"),
                "/".join(f"{v:.1f}" for v in r["load_average"]),
            ]
        )
    headers = ["model", "processes", "wall (s)", "speed-up", "same entries", "load before/after"]
    env = data["environment"]
    return (
        "`tc.sensitivity(..., processes=N)` (the default options, 1,000 MNIST-5k test images, "
        "latencies measured from an empty cache in each run; `python -m "
        f"benchmarks.sensitivity_processes`, {env['date']}, {env['cpu']}, {env['cores']} "
        "cores shared with other jobs and the cells above, so the 1-minute load average is "
        "shown: on an oversubscribed box a second process also wins a larger share of the "
        "CPU):\n\n" + render_table(headers, rows, markdown=True)
    )


def render(records: list[dict], extra_notes: str = "") -> tuple[str, str]:
    """Writes results/distributed.md and .json from the cells; returns both paths."""
    cells = {(c["model"], c["technique"], c["workers"]): c for c in records}
    models = [m for m in NAMES if any(key[0] == m for key in cells)]
    workers = sorted({key[2] for key in cells})
    headers = [
        "model",
        "workers",
        "plain (ms/step)",
        "pruned (ms/step)",
        "QAT (ms/step)",
        "pruned / plain",
        "QAT / plain",
        "tfmot pruned / tf_keras plain",
        f"plain vs {workers[0]} worker(s)",
    ]
    commands = sorted({c["command"] for c in records if "command" in c})
    loads = [c["load_average"][0] for c in records if "load_average" in c]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"
    notes = "\n\n".join(
        part
        for part in [
            "MNIST-5k, global batch split over the workers "
            "(`tfcompress.distribute.MultiWorkerMirroredStrategy`, one CPU replica per worker "
            "process, collectives over 127.0.0.1): LeNet-300-100 and the small CNN 1536 samples "
            "at global batch 96 (16 steps an epoch), timed over 2 epochs (LeNet) or 1 (small "
            "CNN; each cell's `steps` is in the JSON); ResNet50 "
            "(`keras.applications.ResNet50(weights=None)`, 23.6 M parameters, MNIST padded to "
            "32x32x3) 96 samples at global batch 24, 1 timed epoch (4 steps). Pruned: "
            "`prune_low_magnitude` 50% with `UpdatePruningStep` (masks every 4 steps); QAT: "
            "`quantize_model`. Step time: median over the timed steps after a warm-up epoch, "
            "timed on the chief around each `fit` step (Keras callbacks, all-reduce included). "
            "tfmot: `tfmot.sparsity.keras.prune_low_magnitude` (ConstantSparsity 50%, "
            "frequency 4) on the same tf_keras model, under TensorFlow's own "
            "`tf.distribute.MultiWorkerMirroredStrategy`, against plain tf_keras under the same "
            "strategy (its own baseline: tf_keras and Keras 3 step times differ). All workers "
            f"share this machine's 2 cores (1-minute load average {load} during the cells, "
            "other jobs included), so more workers add communication and contention without "
            "adding compute: the last column is the cost of that, not a speed-up across "
            "machines. One run: single cells are noisy.",
            "Verdicts against the issue's targets (pruning and QAT overhead per step no worse "
            "than single-process; pruning's no worse than tfmot's under the same strategy; "
            f"ratios within {NOISE:.0%} count as equal):\n\n"
            + "\n".join(_verdicts(cells, models, workers)),
            "Memory: bytes of the model's variables (weights, masks, quantizer ranges and "
            "steps; no optimizer slots), and each worker's peak RSS "
            "(`VmHWM`, chief first):\n\n" + _memory_table(cells, models, workers),
            _sensitivity_notes(),
            "Cells measured by: " + "; ".join(f"`{c}`" for c in commands) if commands else "",
            extra_notes,
        ]
        if part
    )
    records = sorted(records, key=lambda c: (list(NAMES).index(c["model"]), c["workers"]))
    return write_results(
        "distributed",
        "Multi-worker training step time and memory (MWMS, local CPU workers)",
        headers,
        _step_rows(cells, models, workers),
        records,
        notes,
    )
