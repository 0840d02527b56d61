"""QAT, low-bit weights and clustering on MNIST-5k, tfcompress side by side with tfmot in one run.

For LeNet-300-100 and the small CNN both sides start from the same weights
(trained once here in Keras 3 and handed to the tfmot process as an NPZ, as in
benchmarks/pruning.py) and fine-tune every variant on the same data, in the same
pre-shuffled order, for the same number of steps with the same optimizer:

* float: the pretrained model, exported as float32;
* post-training int8: calibrated on 200 training images;
* QAT int8: `quantize_model`, fine-tuned, exported to int8 from its fake-quant ranges;
* QAT 4-bit weights (tfcompress only: tfmot has no simple 4-bit path);
* clustered-16: k-means++ clustering, fine-tuned, stripped, exported as float32 and
  as dynamic-range; tfcompress both per tensor (tfmot's setting) and with its default
  (per output channel for convolution kernels);
* pruned 80% + PQAT: unstructured magnitude pruning, stripped, pruning-preserving QAT,
  exported to int8.

The tiny MobileNet (BatchNorm, ReLU6, a residual Add) runs on the tfcompress
side only. The tfmot side runs in its own process
(benchmarks/tfmot_quantization_peer.py, it needs tf_keras) and only writes
`.tflite` files and Keras accuracies: every `.tflite` of both sides is measured
here, by the same helper (`tfcompress.report`), one after the other.

Run from the repository root (needs the `tfmot` extra for the peer rows):
    python -m benchmarks.quantization [--pretrain_epochs N] [--finetune_epochs N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import keras
import numpy as np

import tfcompress as tc
from benchmarks.harness import write_results
from tfcompress.clustering import cluster_weights, strip_clustering
from tfcompress.quantization import quantize_model
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


def compiled(model: keras.Model, lr: float) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def fit(model: keras.Model, x, y, lr: float, callbacks=()) -> keras.Model:
    """One pass over the pre-shuffled `(x, y)`: the same steps, in the same order, on both sides."""
    compiled(model, lr).fit(
        x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=list(callbacks)
    )
    return model


def clone_with_weights(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def keras_accuracy(model: keras.Model, data) -> float:
    logits = model.predict(data.x_test, batch_size=256, verbose=0)
    return float(np.mean(logits.argmax(-1) == data.y_test))


def has_conv(model: keras.Model) -> bool:
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return any(isinstance(layer, kinds) for layer in model.layers)


def attempt(key: str, make: Callable[[], tuple[bytes, float | None]]) -> dict:
    """Runs one variant; a failure is recorded (and printed) instead of stopping the benchmark."""
    try:
        content, accuracy = make()
        return {"content": content, "keras_accuracy": accuracy}
    except Exception as err:  # noqa: BLE001 - the benchmark reports API failures as rows
        print(f"tfcompress variant {key!r} failed:", file=sys.stderr)
        traceback.print_exc()
        return {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}


def ours(base: keras.Model, data, orders: dict, args) -> dict[str, dict]:
    """Every tfcompress variant of `base`: key -> {"content", "keras_accuracy"} or {"error"}."""
    x_ft, y_ft = orders["finetune"]
    lr = args.finetune_lr
    out = {
        "float": attempt("float", lambda: (tc.export_tflite(base), keras_accuracy(base, data))),
        "ptq_int8": attempt(
            "ptq_int8",
            lambda: (
                tc.export_tflite(base, mode="int8", representative_data=data.x_train[:CALIBRATION]),
                None,
            ),
        ),
    }

    def float_finetuned():
        model = fit(clone_with_weights(base), x_ft, y_ft, lr)
        return tc.export_tflite(model), keras_accuracy(model, data)

    out["float_finetuned"] = attempt("float_finetuned", float_finetuned)

    def qat(scheme: str):
        def make():
            model = fit(quantize_model(clone_with_weights(base), scheme=scheme), x_ft, y_ft, lr)
            return tc.export_tflite(model, mode="int8"), keras_accuracy(model, data)

        return make

    out["qat_int8"] = attempt("qat_int8", qat("default_8bit"))
    out["qat_4bit"] = attempt("qat_4bit", qat("default_4bit"))

    per_channel_options = {"": False, "auto_": None} if has_conv(base) else {"": False}
    for prefix, per_channel in per_channel_options.items():
        plain = {}  # the stripped model, clustered and fine-tuned once for both exports

        def cluster(mode, per_channel=per_channel, plain=plain):
            if "model" not in plain:
                clustered = cluster_weights(
                    clone_with_weights(base),
                    number_of_clusters=CLUSTERS,
                    cluster_centroids_init="kmeans++",
                    cluster_per_channel=per_channel,
                )
                plain["model"] = strip_clustering(fit(clustered, x_ft, y_ft, lr))
            model = plain["model"]
            return tc.export_tflite(model, mode=mode), keras_accuracy(model, data)

        for mode in ("float32", "dynamic"):
            key = f"cluster_{prefix}{mode}"
            out[key] = attempt(key, lambda mode=mode, cluster=cluster: cluster(mode))

    def pqat():
        schedule = tc.PolynomialDecay(
            0.0, SPARSITY, 0, orders["prune_end_step"], frequency=args.prune_frequency
        )
        pruned = tc.prune_low_magnitude(clone_with_weights(base), schedule, block_size=(1, 1))
        x_pr, y_pr = orders["prune"]
        fit(pruned, x_pr, y_pr, args.prune_lr, [tc.UpdatePruningStep()])
        model = quantize_model(tc.strip_pruning(pruned), scheme="prune_preserve_8bit")
        fit(model, x_ft, y_ft, lr)
        return tc.export_tflite(model, mode="int8"), keras_accuracy(model, data)

    out["pqat_int8"] = attempt("pqat_int8", pqat)
    return out


def run_tfmot(name, base, data, orders, args, seed, workdir) -> dict[str, dict]:
    """The tfmot variants of `base` from the peer process, read back as {"content", ...}."""
    weights = base.get_weights()
    npz = os.path.join(workdir, f"{name}_{seed}.npz")
    np.savez(
        npz,
        n_weights=len(weights),
        x_test=data.x_test,
        y_test=data.y_test,
        calibration=data.x_train[:CALIBRATION],
        x_finetune=orders["finetune"][0],
        y_finetune=orders["finetune"][1],
        x_prune=orders["prune"][0],
        y_prune=orders["prune"][1],
        **{f"w{i}": w for i, w in enumerate(weights)},
    )
    job = {
        "model": name,
        "npz": npz,
        "seed": seed,
        "out": workdir,
        "clusters": CLUSTERS,
        "sparsity": SPARSITY,
        "prune_end_step": orders["prune_end_step"],
        "prune_frequency": args.prune_frequency,
        "prune_lr": args.prune_lr,
        "finetune_lr": args.finetune_lr,
        "result": os.path.join(workdir, f"{name}_{seed}.json"),
    }
    job_path = os.path.join(workdir, f"{name}_{seed}_job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks.tfmot_quantization_peer", job_path], check=True, env=env
    )
    with open(job["result"]) as f:
        rows = json.load(f)["rows"]
    out = {}
    for key, row in rows.items():
        with open(row["tflite"], "rb") as f:
            out[key] = {"content": f.read(), "keras_accuracy": row["keras_accuracy"]}
    return out


def measure(content: bytes, data, latency_runs: int) -> dict:
    result = tc.report(tflite=content, data=(data.x_test, data.y_test), latency_runs=latency_runs)
    s = result.summary
    uniques = [op.unique for op in result.ops if op.unique is not None]
    return {
        "tflite_accuracy": s["tflite_accuracy"],
        "tflite_bytes": s["tflite_bytes"],
        "gzip_bytes": s["gzip_bytes"],
        "latency_ms": s["latency_ms"],
        "weight_sparsity": s["tflite_sparsity"],
        "max_unique_per_kernel": max(uniques) if uniques else None,
    }


def data_orders(data, args, seed: int) -> dict:
    """The pre-shuffled fine-tuning and pruning data both sides train on."""
    rng = np.random.default_rng(seed)
    n = len(data.x_train)

    def order(epochs):
        idx = np.concatenate([rng.permutation(n) for _ in range(epochs)])
        return data.x_train[idx], data.y_train[idx]

    prune = order(args.prune_epochs)
    return {
        "finetune": order(args.finetune_epochs),
        "prune": prune,
        "prune_end_step": int(0.7 * -(-len(prune[0]) // BATCH)),
    }


def run_seed(seed: int, models: list[str], args, workdir: str, has_tfmot: bool) -> list[dict]:
    """Split, pretraining, both sides' variants and their measurements for one seed."""
    data = tc.datasets.load_mnist5k(seed=seed)
    orders = data_orders(data, args, seed)
    records = []
    for model_name in models:
        builder = getattr(tc.models, model_name)
        keras.utils.set_random_seed(seed)
        base = compiled(builder(), 1e-3)
        base.fit(
            data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=BATCH, verbose=2
        )
        name = base.name
        sides = {"tfcompress": ours(base, data, orders, args)}
        if has_tfmot and name in PEERS:
            sides["tfmot"] = run_tfmot(name, base, data, orders, args, seed, workdir)
        for side, variants in sides.items():  # measured here, one after the other
            for key in ROWS:
                if key not in variants:
                    continue
                row = variants[key]
                record = {
                    "seed": seed,
                    "model": name,
                    "side": side,
                    "key": key,
                    "method": ROWS[key],
                    "keras_accuracy": row.get("keras_accuracy"),
                    "prune_end_step": orders["prune_end_step"],
                }
                if "error" in row:
                    record["error"] = row["error"]
                else:
                    kept = os.path.join(workdir, f"{name}_{seed}_{side}_{key}.tflite")
                    with open(kept, "wb") as f:
                        f.write(row["content"])
                    record.update(measure(row["content"], data, args.latency_runs))
                records.append(record)
    return records


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretrain_epochs", type=int, default=8)
    parser.add_argument("--finetune_epochs", type=int, default=2)
    parser.add_argument("--prune_epochs", type=int, default=2)
    parser.add_argument("--prune_frequency", type=int, default=10)
    parser.add_argument("--finetune_lr", type=float, default=1e-4)
    parser.add_argument("--prune_lr", type=float, default=1e-3)
    parser.add_argument("--latency_runs", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (split, init, order)")
    parser.add_argument(
        "--multi_seed_models",
        nargs="*",
        default=["lenet_300_100"],
        help="models run for every seed; the others for seed 0 only",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    has_tfmot = importlib.util.find_spec("tensorflow_model_optimization") is not None
    if not has_tfmot:
        print("tfmot is not installed (pip install '.[tfmot]'): peer rows skipped")
    workdir = tempfile.mkdtemp(prefix="tfcompress-quant-bench-")
    print(f"Every .tflite of this run is kept in {workdir}")
    records = []
    for seed in range(args.seeds):
        models = MODELS if seed == 0 else [m for m in MODELS if m in args.multi_seed_models]
        records += run_seed(seed, models, args, workdir, has_tfmot)
    summary = summarize(records)
    minutes = (time.perf_counter() - start) / 60

    headers = [
        "model",
        "method",
        "side",
        "seeds",
        ".tflite acc.",
        "Keras acc.",
        ".tflite bytes",
        "gzip bytes",
        "latency (ms)",
        "weight sparsity",
        "max distinct",
    ]
    notes = describe(args, records[0]["prune_end_step"], summary, minutes)
    write_results(
        "quantization",
        "Quantization and clustering: tfcompress vs tfmot",
        headers,
        table_rows(summary),
        [{"args": vars(args), "runtime_min": minutes, "summary": summary, "runs": records}],
        notes,
    )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "quantization.md")
    with open(path, encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    main()
