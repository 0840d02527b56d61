"""Compression to a target on MNIST-5k: per-layer recipes vs uniform settings vs tfmot.

For each model and seed: the float model is trained to convergence; then every
row starts from its weights, fine-tunes for the same epochs on the same data and
is measured as an int8 `.tflite` in the interpreter (accuracy on the 1,000 test
images, gzip bytes, latency with and without our kernels):

* `float32` / `int8 (post-training)`: the starting point and plain int8;
* `recipe`: a per-layer recipe of benchmarks/recipes (sparsity and 4/8-bit weights
  per layer, `tc.Recipe` YAML; found by the search in results/compress-notes.md) run with
  the existing APIs (`prune_low_magnitude(layer_sparsity=...)`, `strip_pruning`,
  `quantize_model(scheme="prune_preserve_8bit", precision=...)`, `export_tflite`);
* `uniform ... at the same gzip`: one sparsity for every layer (8-bit, and 4-bit),
  the sparsity chosen so that the gzip bytes match the recipe's;
* `tfmot`: its uniform pruning + pruning-preserving QAT (8-bit), in its own
  process (benchmarks/tfmot_compress_peer.py, needs a Python with tfmot and tf_keras);
* `planned`: `tc.sensitivity` + `tc.plan` + `tc.compress` for the same target
  (skipped with a note while the installed tfcompress lacks them).

Run from the repository root:
    python -m benchmarks.compress [--models lenet_300_100 small_cnn] [--seeds 0 1]
        [--tfmot_python /work/venvs/tfmot/bin/python]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import subprocess
import tempfile
import time

import keras
import numpy as np
import yaml

import tfcompress as tc
from benchmarks.harness import RESULTS_DIR, write_results
from tfcompress.export import TFLiteModel
from tfcompress.reporting.plots import plot_tradeoff
from tfcompress.reporting.report import gzip_size
from tfcompress.reporting.table import render_table

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

CPU = "AMD EPYC (Zen 4, AVX-512 VNNI, no AMX), 2 cores"
RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")
# Per model: the size ratio the issue asks for and the epochs that converge the float model.
GOALS = {"lenet_300_100": (40, 20), "small_cnn": (50, 6)}


def load_recipe(name: str) -> dict:
    """A recipe of benchmarks/recipes (the `tc.Recipe` YAML form), found by the search that
    results/compress-notes.md records."""
    with open(os.path.join(RECIPES_DIR, f"{name}.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


RECIPES = {
    name: {
        "goal": goal,
        "pretrain_epochs": pretrain_epochs,
        "layers": load_recipe(name)["layers"],
        "prune_epochs": load_recipe(name)["fine_tune"]["epochs"],
        "qat_epochs": load_recipe(name)["qat"]["epochs"],
    }
    for name, (goal, pretrain_epochs) in GOALS.items()
}
# The latency target on the small CNN (a fraction of its plain int8 latency) and a recipe of
# block-sparse layers that our kernels run.
LATENCY_FACTOR = 0.85
LATENCY_LAYERS = load_recipe("small_cnn_latency")["layers"]


def clone(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def pretrain(name: str, epochs: int, data, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = getattr(tc.models, name)()
    model.compile(keras.optimizers.Adam(1e-3), LOSS)
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


def run_recipe(base: keras.Model, layers: dict, data, args, seed: int) -> tuple[bytes, float]:
    """Executes a recipe's `layers` with the existing APIs; returns the int8 `.tflite` and
    the seconds it took. One pruning structure per recipe (block_size is per model)."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    prune = {n: c["prune"] for n, c in layers.items() if c.get("prune")}
    bits = {n: c["bits"] for n, c in layers.items() if c.get("bits")}
    structures = {p["structure"] for p in prune.values()}
    if len(structures) > 1:
        raise ValueError(f"`layers`: one pruning structure per recipe here, got {structures}")
    model = clone(base)
    if prune:
        sparsity = {n: p["sparsity"] for n, p in prune.items()}
        steps = args.prune_epochs * -(-len(data.x_train) // 64)
        schedule = tc.PolynomialDecay(
            0.0, max(sparsity.values()), 0, int(args.end_fraction * steps), frequency=10
        )
        block = (16, 4) if structures == {"16x4"} else (1, 1)
        skip = [layer.name for layer in base.layers if layer.name not in sparsity]
        model = tc.prune_low_magnitude(
            model, schedule, layer_sparsity=sparsity, skip=skip, block_size=block
        )
        model.compile(keras.optimizers.Adam(1e-3), LOSS)
        model.fit(
            data.x_train,
            data.y_train,
            epochs=args.prune_epochs,
            batch_size=64,
            verbose=0,
            callbacks=[tc.UpdatePruningStep()],
        )
        model = tc.strip_pruning(model)
    qat = tc.quantize_model(model, scheme="prune_preserve_8bit", precision=bits or None)
    qat.compile(keras.optimizers.Adam(1e-4), LOSS)
    qat.fit(data.x_train, data.y_train, epochs=args.qat_epochs, batch_size=64, verbose=0)
    content = tc.export_tflite(qat, mode="int8")
    return content, time.perf_counter() - start


def uniform_layers(base: keras.Model, sparsity: float, bits: int) -> dict:
    kernels = [r.name for r in tc.report(base).layers if r.kernel_params]
    prune = {"structure": "unstructured", "sparsity": sparsity}
    return {name: {"prune": dict(prune), "bits": bits} for name in kernels}


def kernel_bytes(base: keras.Model, layers: dict) -> int:
    """Gzip bytes of the kernels magnitude-pruned and quantized (symmetric, per output
    channel) as `layers` says: the part of the file's gzip size that a recipe changes."""
    parts = []
    for layer in base.layers:
        if getattr(layer, "kernel", None) is None:
            continue
        w = keras.ops.convert_to_numpy(layer.kernel).reshape(-1, layer.kernel.shape[-1])
        config = layers.get(layer.name, {})
        sparsity = config.get("prune", {}).get("sparsity", 0.0)
        levels = 2 ** (config.get("bits", 8) - 1) - 1
        if sparsity:
            w = np.where(np.abs(w) > np.quantile(np.abs(w), sparsity), w, 0.0)
        scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / levels
        parts.append(np.round(w / scale).astype(np.int8).T.tobytes())
    return len(gzip.compress(b"".join(parts), compresslevel=9, mtime=0))


def matched_sparsity(base: keras.Model, goal_bytes: int, bits: int) -> float:
    """The uniform sparsity whose kernels gzip to `goal_bytes` (bisection)."""
    low, high = 0.0, 0.995
    for _ in range(14):
        middle = (low + high) / 2
        if kernel_bytes(base, uniform_layers(base, middle, bits)) > goal_bytes:
            low = middle
        else:
            high = middle
    return round(high, 4)


def measure(content: bytes, data, latency_runs: int, kernels: bool) -> dict:
    runner = TFLiteModel(content)
    row = {
        "accuracy": runner.evaluate(data.x_test, data.y_test),
        "bytes": len(content),
        "gzip_bytes": gzip_size(content),
        "latency_ms": runner.latency(data.x_test[:1], warmup=10, runs=latency_runs)["median_ms"],
    }
    if kernels:
        try:
            compared = tc.compare_kernels(content, data.x_test[:100], rounds=5, runs=latency_runs)
            row["default_ms"] = compared["default_ms"]
            row["kernels_ms"] = compared["kernels_ms"]
        except tc.kernels.KernelsNotBuiltError as error:
            row["kernels_note"] = str(error)
    return row


def run_tfmot(python, name, base, data, sparsities, args, seed, workdir) -> list[dict]:
    if not python:
        return []
    npz = os.path.join(workdir, f"{name}_{seed}.npz")
    weights = base.get_weights()
    np.savez(
        npz,
        n_weights=len(weights),
        x=data.x_train,
        y=data.y_train,
        **{f"w{i}": w for i, w in enumerate(weights)},
    )
    job = {
        "model": name,
        "npz": npz,
        "seed": seed,
        "sparsities": sparsities,
        "prune_epochs": args.prune_epochs,
        "qat_epochs": args.qat_epochs,
        "end_fraction": args.end_fraction,
        "frequency": 10,
        "out": os.path.join(workdir, f"{name}_{seed}_tfmot"),
        "result": os.path.join(workdir, f"{name}_{seed}_tfmot.json"),
    }
    job_path = os.path.join(workdir, f"{name}_{seed}_tfmot_job.json")
    json.dump(job, open(job_path, "w"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    subprocess.run([python, "-m", "benchmarks.tfmot_compress_peer", job_path], check=True, env=env)
    return json.load(open(job["result"]))["runs"]


def planned(base: keras.Model, data, target_kwargs: dict, args, measured: dict):
    """tc.sensitivity (once per model: kept in `measured`) + tc.plan + tc.compress for a
    target, timed step by step, with the same fine-tuning and QAT epochs as the other rows;
    None while the installed tfcompress lacks them."""
    try:  # `tc.plan` once it is exported: the submodule of that name hides the function
        from tfcompress.planning.errors import InfeasibleTargetError
        from tfcompress.planning.plan import plan
    except ImportError:
        return None
    if not all(hasattr(tc, n) for n in ("sensitivity", "compress", "Target")):
        return None
    validation = (data.x_test, data.y_test)
    if "sensitivity" not in measured:
        start = time.perf_counter()
        measured["sensitivity"] = tc.sensitivity(
            base, (data.x_train, data.y_train), validation, verbose=0
        )
        measured["sensitivity_s"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        recipe = plan(base, measured["sensitivity"], tc.Target(**target_kwargs))
        recipe = recipe.replace(
            fine_tune=dataclasses.replace(recipe.fine_tune, epochs=args.prune_epochs),
            qat=dataclasses.replace(recipe.qat, epochs=args.qat_epochs),
        )
    except InfeasibleTargetError as error:
        return {"infeasible": str(error), "sensitivity_s": measured["sensitivity_s"]}
    plan_s = time.perf_counter() - start
    start = time.perf_counter()
    result = tc.compress(
        base,
        (data.x_train, data.y_train),
        validation,
        recipe=recipe,
        verbose=0,
        latency_runs=args.latency_runs,
    )
    return {
        "content": result.tflite,
        "recipe": json.loads(json.dumps(recipe.to_dict(), default=str)),
        "sensitivity_s": measured["sensitivity_s"],
        "plan_s": plan_s,
        "compress_s": time.perf_counter() - start,
        "targets": json.loads(json.dumps(result.targets, default=str)),
    }


def model_rows(name: str, data, args, seed: int, workdir: str) -> list[dict]:
    spec = RECIPES[name]
    args = argparse.Namespace(
        **{
            **vars(args),
            "prune_epochs": args.prune_epochs or spec["prune_epochs"],
            "qat_epochs": args.qat_epochs or spec["qat_epochs"],
        }
    )
    start = time.perf_counter()
    base = pretrain(name, spec["pretrain_epochs"], data, seed)
    pretrain_s = time.perf_counter() - start
    rows = []

    def add(method, content, seconds=None, kernels=False, **extra):
        row = {"model": name, "seed": seed, "method": method, "seconds": seconds, **extra}
        row.update(measure(content, data, args.latency_runs, kernels))
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
        return row

    float_row = add("float32", tc.export_tflite(base), pretrain_s)
    calibration = data.x_train[:200]
    int8 = tc.export_tflite(base, mode="int8", representative_data=calibration)
    latency_limit = LATENCY_FACTOR * add("int8 (post-training)", int8)["latency_ms"]
    if not args.only_planned:
        baseline_rows(add, name, base, data, args, seed, workdir, latency_limit)
    goal = {"max_gzip_bytes": float_row["gzip_bytes"] // spec["goal"], "max_accuracy_drop": 1.0}
    goals = [("planned", goal)]
    if name == "small_cnn":
        goals.append(("planned, latency target", {"max_latency_ms": latency_limit}))
    measured = {}
    for method, goal in goals:
        plan = planned(base, data, goal, args, measured)
        if plan and "infeasible" in plan:
            rows.append({"model": name, "seed": seed, "method": method, "target": goal, **plan})
            print(json.dumps(rows[-1]), flush=True)
        elif plan:
            extra = {"latency_limit_ms": latency_limit} if "max_latency_ms" in goal else {}
            content = plan.pop("content")
            add(
                method,
                content,
                plan["compress_s"],
                kernels=bool(extra),
                target=goal,
                **plan,
                **extra,
            )
    return rows


def baseline_rows(add, name, base, data, args, seed, workdir, latency_limit) -> None:
    """The hand recipe, uniform settings at its gzip size, tfmot, and (small CNN) the
    block-sparse recipe for the latency target, each measured by `add`."""
    spec = RECIPES[name]
    content, seconds = run_recipe(base, spec["layers"], data, args, seed)
    add("recipe", content, seconds, layers=spec["layers"])
    # Uniform settings at the recipe's gzip size: their kernels gzip as the recipe's do.
    goal_bytes = kernel_bytes(base, spec["layers"])
    matched = {}
    for bits in (8, 4):
        sparsity = matched_sparsity(base, goal_bytes, bits)
        matched[bits] = sparsity
        layers = uniform_layers(base, sparsity, bits)
        content, seconds = run_recipe(base, layers, data, args, seed)
        add(
            f"uniform sparsity, {bits}-bit, same gzip",
            content,
            seconds,
            setting=f"{sparsity:.1%}",
            layers=layers,
        )
    for run in run_tfmot(
        args.tfmot_python, name, base, data, [matched[8], 0.9], args, seed, workdir
    ):
        label = "same gzip as 8-bit uniform" if run["sparsity"] == matched[8] else "fixed"
        add(
            f"tfmot uniform pruning + PQAT 8-bit ({label})",
            open(run["tflite"], "rb").read(),
            setting=f"{run['sparsity']:.1%}",
        )
    if name == "small_cnn":
        content, seconds = run_recipe(base, LATENCY_LAYERS, data, args, seed)
        add(
            "latency recipe (16x4 blocks)",
            content,
            seconds,
            kernels=True,
            layers=LATENCY_LAYERS,
            latency_limit_ms=latency_limit,
        )


def spread(values: list[float], digits: int = 3) -> str:
    """Mean, with the range over seeds when there are several."""
    mean = f"{np.mean(values):.{digits}f}"
    if len(values) < 2:
        return mean
    return f"{mean} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def table(records: list[dict]) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """One row per model and method (means over seeds) and the verdict rows."""
    rows, verdicts = [], []
    for name in dict.fromkeys(r["model"] for r in records):
        of_model = [r for r in records if r["model"] == name]
        floats = {r["seed"]: r for r in of_model if r["method"] == "float32"}
        infeasible = [r for r in of_model if "infeasible" in r]
        measured = [r for r in of_model if "infeasible" not in r]
        for method in dict.fromkeys(r["method"] for r in measured):
            group = [r for r in measured if r["method"] == method]
            drops = [100 * (floats[r["seed"]]["accuracy"] - r["accuracy"]) for r in group]
            ratios = [floats[r["seed"]]["gzip_bytes"] / r["gzip_bytes"] for r in group]
            kernels = [r["kernels_ms"] for r in group if "kernels_ms" in r]
            seconds = [r["seconds"] for r in group if r.get("seconds") is not None]
            rows.append(
                [
                    name,
                    method,
                    ", ".join(dict.fromkeys(r.get("setting", "") for r in group)),
                    spread([r["accuracy"] for r in group]),
                    spread(drops, 1),
                    f"{np.mean([r['gzip_bytes'] for r in group]):,.0f}",
                    spread(ratios, 1),
                    f"{np.mean([r['latency_ms'] for r in group]):.4f}",
                    f"{np.mean(kernels):.4f}" if kernels else "-",
                    f"{np.mean(seconds):.0f}" if seconds else "-",
                ]
            )
        goal = RECIPES[name]["goal"]
        for method in ("recipe", "planned"):
            group = [r for r in measured if r["method"] == method]
            if not group:
                verdicts.append([name, f"{method}: >= {goal}x, <= 1 point", "not run", "not met"])
                continue
            ratios = [floats[r["seed"]]["gzip_bytes"] / r["gzip_bytes"] for r in group]
            drops = [100 * (floats[r["seed"]]["accuracy"] - r["accuracy"]) for r in group]
            met = all(q >= goal for q in ratios) and all(d <= 1.0 for d in drops)
            verdicts.append(
                [
                    name,
                    f"{method}: >= {goal}x smaller (gzip), <= 1 point lost",
                    f"{spread(ratios, 1)}x, {spread(drops, 1)} points, {len(group)} seed(s)",
                    "met" if met else "not met",
                ]
            )
        for r in (r for r in of_model if "compress_s" in r):
            cheap = r["sensitivity_s"] + r["plan_s"] < r["compress_s"]
            verdicts.append(
                [
                    name,
                    f"{r['method']}, seed {r['seed']}: sensitivity + plan cheaper than compress",
                    f"sensitivity {r['sensitivity_s']:.0f} s, plan {r['plan_s']:.2f} s, "
                    f"compress (fine-tuning, export, checks) {r['compress_s']:.0f} s",
                    "met" if cheap else "not met",
                ]
            )
        for r in infeasible:
            limits = ", ".join(f"{k}={v}" for k, v in r["target"].items())
            verdicts.append(
                [
                    name,
                    f"{r['method']} ({limits}), seed {r['seed']}",
                    f"infeasible: {r['infeasible']}",
                    "not met",
                ]
            )
        for r in (r for r in measured if "latency_limit_ms" in r):
            met = r.get("kernels_ms") is not None and r["kernels_ms"] <= r["latency_limit_ms"]
            by_default = r["latency_ms"] <= r["latency_limit_ms"]
            verdicts.append(
                [
                    name,
                    f"{r['method']}: latency <= {r['latency_limit_ms']:.4f} ms with our kernels, "
                    f"seed {r['seed']}",
                    f"{r.get('kernels_ms', float('nan')):.4f} ms ours, {r['latency_ms']:.4f} ms "
                    f"default, {100 * (floats[r['seed']]['accuracy'] - r['accuracy']):.1f} points",
                    ("met" if met else "not met")
                    + (" (met by the default interpreter)" if by_default and not met else ""),
                ]
            )
    headers = [
        "model",
        "method",
        "setting",
        "accuracy",
        "points lost",
        "gzip bytes",
        "smaller (gzip)",
        "latency (ms)",
        "ours (ms)",
        "time (s)",
    ]
    return headers, rows, verdicts


def describe(args) -> str:
    epochs = "; ".join(
        f"{n}: {RECIPES[n]['pretrain_epochs']} epochs of pretraining, then "
        f"{args.prune_epochs or RECIPES[n]['prune_epochs']} of pruning and "
        f"{args.qat_epochs or RECIPES[n]['qat_epochs']} of QAT"
        for n in args.models
    )
    return (
        "MNIST-5k (4,000 / 1,000; the split and every training seeded by the seed: "
        f"{', '.join(map(str, args.seeds))}). Figures are means over seeds, the range over "
        "seeds in brackets. The float model is trained to convergence (Adam 1e-3, batch 64) and "
        "every compressed row starts from its weights and fine-tunes on the training set "
        f"({epochs}). Pruning: Adam 1e-3, PolynomialDecay 0 -> target ending at "
        f"{args.end_fraction:.0%} of the steps, every 10 steps. QAT: Adam 1e-4, "
        "sparsity-preserving, 4 or 8 bits per layer, int8 export from its ranges. tfmot: the "
        "same with its own API (8-bit only). `points lost`: the float `.tflite`'s test accuracy "
        "minus this `.tflite`'s, in points (one test image = 0.1). `smaller`: the float32 "
        "`.tflite`'s gzip bytes over this file's. Uniform rows: one sparsity for every kernel, "
        "chosen so that the magnitude-pruned kernels gzip to the recipe's (the `gzip bytes` "
        "column shows how close that came). Latency: interpreter, batch 1, 1 thread, default "
        f"XNNPACK, median of {args.latency_runs} runs; `ours`: with our kernels "
        "(`compare_kernels`, KernelDelegate auto). Latency limit: a fraction of the plain "
        f"int8 file's latency in the same run ({LATENCY_FACTOR}; rows recorded with a limit "
        "of 0.5x came from a run before the planner showed 0.5x infeasible). `time`: seconds "
        "of the row's training and export (float32: its pretraining)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--prune_epochs", type=int, default=None, help="default: per model")
    parser.add_argument("--qat_epochs", type=int, default=None, help="default: per model")
    parser.add_argument("--end_fraction", type=float, default=0.5)
    parser.add_argument("--latency_runs", type=int, default=200)
    parser.add_argument("--tfmot_python", default=None, help="a Python with tfmot and tf_keras")
    parser.add_argument("--name", default="compress")
    parser.add_argument("--only_planned", action="store_true", help="float, int8 and planned rows")
    parser.add_argument(
        "--render", nargs="+", default=None, help="only re-render these results JSON files, merged"
    )
    args = parser.parse_args()
    if args.render:
        render(args)
        return
    start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="tfcompress-bench-")
    records = []
    for seed in args.seeds:
        data = tc.datasets.load_mnist5k(seed=seed)
        for name in args.models:
            records.extend(model_rows(name, data, args, seed, workdir))
            paths = save(records, args, time.perf_counter() - start)  # after each model
    print(open(paths[1], encoding="utf-8").read())


def render(args) -> None:
    """Writes one table from several runs' JSON (rows of a model, seed and method that an
    earlier file holds are not repeated); their commands are listed in the notes."""
    records, commands, seen = [], [], set()
    for path in args.render:
        run = json.load(open(path, encoding="utf-8"))
        commands.append(f"`{run['environment']['command']}` ({run['environment']['date']})")
        for record in run["results"]:
            key = (record["model"], record["seed"], record["method"])
            if key not in seen:
                seen.add(key)
                records.append(record)
    args.models = list(dict.fromkeys(r["model"] for r in records))
    args.seeds = sorted({r["seed"] for r in records})
    save(records, args, None, "Rows measured by: " + "; ".join(commands) + ".")


def _kind(method: str) -> str:
    if method == "float32":
        return "original"
    return "planned" if method.startswith(("planned", "recipe", "latency recipe")) else "uniform"


def plot_tradeoffs(records: list[dict], name: str) -> list[str]:
    """Accuracy vs gzip bytes and vs latency per model (its first seed): the original, the
    uniform baselines (ours and tfmot's) and the per-layer recipes and plans, as PNGs beside
    the table."""
    written = []
    for model in dict.fromkeys(r["model"] for r in records):
        seed = min(r["seed"] for r in records if r["model"] == model)
        points = [
            {
                "label": r["method"],
                "kind": _kind(r["method"]),
                "group": "tfmot" if r["method"].startswith("tfmot") else None,
                "gzip_bytes": r.get("gzip_bytes"),
                "latency_ms": r.get("latency_ms"),
                "accuracy": r.get("accuracy"),
            }
            for r in records
            if r["model"] == model and r["seed"] == seed and "accuracy" in r
        ]
        for x in ("gzip_bytes", "latency_ms"):
            path = os.path.join(RESULTS_DIR, f"{name}-{model}-{x}.png")
            plot_tradeoff(
                [{k: v for k, v in p.items() if v is not None} for p in points],
                path,
                x=x,
                note=f"{model}, MNIST-5k seed {seed}; latency on {CPU}",
            )
            written.append(path)
    return written


def save(records: list[dict], args, seconds: float | None, merged: str = "") -> tuple[str, str]:
    plot_tradeoffs(records, args.name)
    headers, rows, verdicts = table(records)
    notes = "\n\n".join(
        [
            "## Verdicts\n\n"
            + render_table(["model", "goal", "measured", "verdict"], verdicts, markdown=True),
            describe(args),
            f"CPU: {CPU}, shared with other jobs: latency figures under ~2x apart are noise; "
            "accuracy differs by about +-0.7 points between seeds without meaning anything.",
            merged or f"Runtime: {seconds / 60:.1f} min.",
        ]
    )
    title = "Compression to a target: per-layer recipes vs uniform settings vs tfmot"
    return write_results(args.name, title, headers, rows, records, notes)


if __name__ == "__main__":
    main()
