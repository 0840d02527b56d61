"""Tables, targets and notes of the quantization benchmark (`benchmarks/quantization.py`)."""

from __future__ import annotations

import numpy as np

from tfcompress.reporting.table import render_table

MODELS = ["lenet_300_100", "small_cnn", "tiny_mobilenet"]
PEERS = ("lenet_300_100", "small_cnn")  # the models with a tf_keras twin in the peer
CLUSTERS = 16
SPARSITY = 0.8
BATCH = 64
CALIBRATION = 200

# key -> label. The tfmot side makes every row but the control, 4-bit and per-channel rows.
ROWS = {
    "float": "float",
    "float_finetuned": "float, fine-tuned like the variants (control)",
    "ptq_int8": "post-training int8",
    "qat_int8": "QAT int8",
    "qat_4bit": "QAT 4-bit weights, int8 activations",
    "cluster_float32": f"clustered-{CLUSTERS} per tensor, float32 export",
    "cluster_dynamic": f"clustered-{CLUSTERS} per tensor, dynamic-range export",
    "cluster_auto_float32": f"clustered-{CLUSTERS} default (per channel for convs), float32",
    "cluster_auto_dynamic": f"clustered-{CLUSTERS} default (per channel for convs), dynamic",
    "pqat_int8": f"pruned {SPARSITY:.0%} + PQAT int8",
}
QUANTIZED = {"ptq_int8", "qat_int8", "qat_4bit", "pqat_int8"}  # rows with a sparsity figure
TARGET_HEADERS = ["model", "target", "tfcompress", "reference", "verdict"]
OURS_ONLY = {"qat_4bit": "n/a (no simple 4-bit path in tfmot)"}


def mean(records: list[dict], field: str) -> float | None:
    values = [r[field] for r in records if r.get(field) is not None]
    return float(np.mean(values)) if values else None


def summarize(records: list[dict]) -> list[dict]:
    """One entry per (model, side, row), averaged over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["side"], r["key"]), []).append(r)
    out = []
    for (model, side, key), group in groups.items():
        ok = [r for r in group if "error" not in r]
        entry = {"model": model, "side": side, "key": key, "method": ROWS[key], "seeds": len(ok)}
        fields = (
            "keras_accuracy",
            "tflite_accuracy",
            "tflite_bytes",
            "gzip_bytes",
            "latency_ms",
            "weight_sparsity",
            "max_unique_per_kernel",
        )
        entry.update({f: mean(ok, f) for f in fields})
        accs = [r["tflite_accuracy"] for r in ok]
        entry["tflite_accuracy_range"] = [min(accs), max(accs)] if accs else None
        if len(ok) < len(group):
            entry["error"] = next(r["error"] for r in group if "error" in r)
        out.append(entry)
    return out


def table_rows(summary: list[dict]) -> list[list[str]]:
    def num(value, spec):
        return "-" if value is None else format(value, spec)

    rows = []
    models = list(dict.fromkeys(e["model"] for e in summary))
    for model in models:
        entries = {(e["side"], e["key"]): e for e in summary if e["model"] == model}
        for key, label in ROWS.items():
            for side in ("tfcompress", "tfmot"):
                e = entries.get((side, key))
                if e is None:
                    if side == "tfmot" and key in OURS_ONLY and model in PEERS:
                        rows.append([model, label, side, "-", OURS_ONLY[key], *["-"] * 6])
                    continue
                if e.get("error") and not e["seeds"]:
                    rows.append([model, label, side, "0", f"failed: {e['error']}", *["-"] * 6])
                    continue
                acc = num(e["tflite_accuracy"], ".3f")
                low, high = e["tflite_accuracy_range"]
                if high > low:
                    acc += f" ({low:.3f}-{high:.3f})"
                sparsity = num(e["weight_sparsity"], ".3f") if key in QUANTIZED else "-"
                distinct = num(e["max_unique_per_kernel"], ".0f") if "cluster" in key else "-"
                rows.append(
                    [
                        model,
                        label,
                        side,
                        str(e["seeds"]),
                        acc,
                        num(e["keras_accuracy"], ".3f"),
                        num(e["tflite_bytes"], ",.0f"),
                        num(e["gzip_bytes"], ",.0f"),
                        num(e["latency_ms"], ".4f"),
                        sparsity,
                        distinct,
                    ]
                )
    return rows


def targets(summary: list[dict]) -> list[list[str]]:
    """The issue's targets, checked on the `.tflite` accuracies and gzip sizes."""
    get = {(e["model"], e["side"], e["key"]): e for e in summary if e["seeds"]}

    def acc(model, side, key):
        e = get.get((model, side, key))
        return None if e is None else e["tflite_accuracy"]

    def size_acc(e):
        return "-" if e is None else f"{e['gzip_bytes']:,.0f} B, {e['tflite_accuracy']:.3f}"

    def verdict(ok):
        return "n/a (row missing)" if ok is None else ("met" if ok else "NOT met")

    rows = []
    for model in dict.fromkeys(e["model"] for e in summary):
        for key, points in (("qat_int8", 0.3), ("qat_4bit", 1.0)):
            ours_acc = acc(model, "tfcompress", key)
            for ref, ref_label in (("float", "float"), ("float_finetuned", "control")):
                base = acc(model, "tfcompress", ref)
                ok = None if None in (base, ours_acc) else ours_acc >= base - points / 100 - 1e-9
                rows.append(
                    [
                        model,
                        f"{ROWS[key]} within {points} points of {ref_label}",
                        "-" if ours_acc is None else f"{ours_acc:.3f}",
                        "-" if base is None else f"{ref_label} {base:.3f}",
                        verdict(ok),
                    ]
                )
        if model not in PEERS or (model, "tfmot", "float") not in get:
            continue
        ours_acc, theirs = acc(model, "tfcompress", "qat_int8"), acc(model, "tfmot", "qat_int8")
        ok = None if None in (ours_acc, theirs) else ours_acc >= theirs
        rows.append(
            [
                model,
                "QAT int8 no worse than tfmot's QAT",
                "-" if ours_acc is None else f"{ours_acc:.3f}",
                "-" if theirs is None else f"tfmot {theirs:.3f}",
                verdict(ok),
            ]
        )
        for key in ("cluster_float32", "cluster_dynamic"):
            a, b = get.get((model, "tfcompress", key)), get.get((model, "tfmot", key))
            ok = None
            if a is not None and b is not None:
                ok = a["gzip_bytes"] <= b["gzip_bytes"]
                ok = ok and a["tflite_accuracy"] >= b["tflite_accuracy"]
            rows.append(
                [
                    model,
                    f"{ROWS[key]}: gzip <= tfmot's, accuracy >= tfmot's",
                    size_acc(a),
                    f"tfmot {size_acc(b)}",
                    verdict(ok),
                ]
            )
    return rows


def describe(args, prune_end_step: int, summary: list[dict], minutes: float) -> str:
    """The Markdown below the table: setup, columns, targets, runtime."""
    seeds = "seed 0"
    if args.seeds > 1 and args.multi_seed_models:
        seeds = (
            f"{', '.join(args.multi_seed_models)}: seeds 0-{args.seeds - 1} (split, init, "
            "data order), mean and (min-max) of the `.tflite` accuracy; other models: seed 0 "
            "only (more seeds would take the run past 15 minutes on 2 cores)"
        )
    setup = [
        f"MNIST-5k (stratified 4,000 / 1,000), {seeds}.",
        f"Each model is pretrained once (per seed) in Keras 3 for {args.pretrain_epochs} epochs "
        "(Adam 1e-3); the tfmot side (tf_keras, its own process) gets the same weights.",
        f"Every variant is fine-tuned for {args.finetune_epochs} epochs with Adam "
        f"{args.finetune_lr:g} on the same pre-shuffled data order on both sides; the control "
        "row fine-tunes the float model the same way, so that QAT is also compared with a float "
        "model that had the same extra training.",
        f"Pruning: unstructured magnitude pruning of every kernel, PolynomialDecay(0 -> "
        f"{SPARSITY:.0%}, end_step {prune_end_step} = 70% of {args.prune_epochs} epochs, "
        f"frequency {args.prune_frequency}), Adam {args.prune_lr:g}, then strip and "
        'pruning-preserving QAT (tfcompress: `quantize_model(scheme="prune_preserve_8bit")`, '
        "tfmot: `Default8BitPrunePreserveQuantizeScheme`) fine-tuned like QAT.",
        f"Clustering: {CLUSTERS} clusters, k-means++ init, the same fine-tune, "
        "`strip_clustering`; tfmot clusters per tensor, so the head-to-head tfcompress rows use "
        "`cluster_per_channel=False`; the `default` rows are tfcompress's default (per output "
        "channel for convolution kernels).",
        f"Post-training int8 is calibrated on the first {CALIBRATION} training images. QAT "
        "models are exported to int8 from their fake-quant ranges (tfcompress: `export_tflite("
        'qat, mode="int8")`; tfmot: TFLiteConverter with `Optimize.DEFAULT`).',
    ]
    columns = [
        "`.tflite acc.`: accuracy of the `.tflite` on the 1,000 test images (0.001 = one "
        "image); `Keras acc.`: of the Keras model that was exported (the fake-quantized model "
        "for QAT rows). gzip: level 9.",
        "Latency: `invoke()` on one image, 1 thread, default XNNPACK, median of "
        f"{args.latency_runs} runs after 10 warm-up calls; every `.tflite` of both sides is "
        "measured in this process, one after the other (run-to-run drift on this shared machine "
        "is about 20%).",
        "`weight sparsity`: fraction of zero weights over all kernels as stored in the "
        "`.tflite` flatbuffer (read with `tfcompress.export.TFLiteFile`), for the integer rows.",
        "`max distinct`: distinct values in the largest kernel of any op of the `.tflite`, for "
        f"the clustering rows: at most {CLUSTERS} if the clustering survives conversion. The "
        "converter folds BatchNormalization into the tiny MobileNet's convolutions, scaling each "
        "output channel of the clustered kernels by its own factor, and dynamic-range "
        "quantization scales per channel, so those rows show more.",
    ]
    return "\n\n".join(
        [
            " ".join(setup),
            " ".join(columns),
            "## Targets",
            render_table(TARGET_HEADERS, targets(summary), markdown=True),
            f"Total runtime: {minutes:.1f} min, both sides, all seeds.",
        ]
    )
