"""The rows of the compression benchmark for one model and seed (benchmarks/compress.py).

Every compressed row starts from the same pretrained float model, fine-tunes for the same
epochs on the same data and is measured as an int8 `.tflite` in the interpreter by
`measure`. The planned rows and the hand recipes run through the public path:
`tc.sensitivity` + `tc.plan` + `tc.compress`, and `tc.compress(recipe=Recipe.from_file(...))`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time

import keras

import tfcompress as tc
from benchmarks.compress_baselines import (
    block_latencies,
    kernel_bytes,
    matched_sparsity,
    run_recipe,
    run_tfmot,
    uniform_layers,
)
from benchmarks.compress_models import MODELS, pretrain, recipe_path
from tfcompress.export import TFLiteModel
from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.plan import plan
from tfcompress.planning.recipe_sections import DistillationSettings
from tfcompress.reporting.report import gzip_size

# The latency target (a fraction of the model's plain int8 latency in the same run).
LATENCY_FACTOR = 0.85
ROW_GROUPS = ("planned", "recipe", "uniform", "tfmot", "latency")


def measure(content: bytes, data, latency_runs: int, kernels: bool) -> dict:
    runner = TFLiteModel(content)
    row = {
        "accuracy": runner.evaluate(data.x_test, data.y_test),
        "bytes": len(content),
        "gzip_bytes": gzip_size(content),
        "sha256": hashlib.sha256(content).hexdigest(),
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


def _plain(value) -> dict:
    return json.loads(json.dumps(value, default=str))


def run_compress(base: keras.Model, recipe, data, args, seed: int) -> dict:
    """`tc.compress(base, train, test, recipe=recipe)` seeded by `seed`, timed."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    result = tc.compress(
        base,
        (data.x_train, data.y_train),
        (data.x_test, data.y_test),
        recipe=recipe,
        verbose=0,
        latency_runs=args.latency_runs,
    )
    return {
        "content": result.tflite,
        "compress_s": time.perf_counter() - start,
        "recipe": _plain(result.recipe.to_dict()),
        "targets": _plain(result.targets),
    }


def planned(base: keras.Model, data, target_kwargs: dict, args, seed: int, measured: dict):
    """tc.sensitivity (once per model: kept in `measured`) + tc.plan + tc.compress for a
    target, timed step by step, fine-tuned for the model's epochs (or `--planned_epochs`),
    distilled from the original with `--planned_distill`."""
    validation = (data.x_test, data.y_test)
    if "sensitivity" not in measured:
        start = time.perf_counter()
        measured["sensitivity"] = tc.sensitivity(
            base, (data.x_train, data.y_train), validation, verbose=0
        )
        measured["sensitivity_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prune_epochs, qat_epochs = args.planned_epochs or (args.prune_epochs, args.qat_epochs)
    try:
        recipe = plan(base, measured["sensitivity"], tc.Target(**target_kwargs))
        recipe = recipe.replace(
            fine_tune=dataclasses.replace(recipe.fine_tune, epochs=prune_epochs),
            qat=dataclasses.replace(recipe.qat, epochs=qat_epochs),
        )
        if args.planned_distill:
            recipe = recipe.replace(distillation=DistillationSettings(teacher="original"))
    except InfeasibleTargetError as error:
        return {"infeasible": str(error), "sensitivity_s": measured["sensitivity_s"]}
    plan_s = time.perf_counter() - start
    done = run_compress(base, recipe, data, args, seed)
    done["recipe"] = _plain(recipe.to_dict())  # with the plan's reasons and predictions
    return {"sensitivity_s": measured["sensitivity_s"], "plan_s": plan_s, **done}


def model_rows(name: str, data, args, seed: int, workdir: str) -> list[dict]:
    spec = MODELS[name]
    args = argparse.Namespace(
        **{
            **vars(args),
            "prune_epochs": args.prune_epochs or spec.prune_epochs,
            "qat_epochs": args.qat_epochs or spec.qat_epochs,
        }
    )
    start = time.perf_counter()
    base = pretrain(name, data, seed)
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
    goal = {"max_gzip_bytes": float_row["gzip_bytes"] // spec.goal, "max_accuracy_drop": 1.0}
    goals = [("planned", goal)]
    if spec.latency_recipe:
        goals.append(("planned, latency target", {"max_latency_ms": latency_limit}))
    measured = {}
    for method, target in goals if "planned" in args.rows else ():
        done = planned(base, data, target, args, seed, measured)
        if "infeasible" in done:
            rows.append({"model": name, "seed": seed, "method": method, "target": target, **done})
            print(json.dumps(rows[-1]), flush=True)
            continue
        extra = {"latency_limit_ms": latency_limit} if "max_latency_ms" in target else {}
        content = done.pop("content")
        row = add(
            method, content, done["compress_s"], kernels=bool(extra), target=target, **done, **extra
        )
        if args.planned_replan and "max_gzip_bytes" in target:
            replanned(add, base, data, target, args, seed, measured, row)
    baseline_rows(add, name, base, data, args, seed, workdir, latency_limit, rows, measured)
    return rows


def replanned(add, base, data, target: dict, args, seed: int, measured: dict, row: dict):
    """Plans once more with the gzip budget scaled by what the first plan predicted over
    what its file measured (no accuracy involved), as a user would after one run; the row
    is judged against the original target."""
    predicted = row["recipe"]["plan"]["predicted"]["gzip_bytes"]
    correction = predicted / row["gzip_bytes"]
    budget = {**target, "max_gzip_bytes": round(target["max_gzip_bytes"] * correction)}
    done = planned(base, data, budget, args, seed, measured)
    if "infeasible" in done:
        return
    content = done.pop("content")
    method = "planned, re-planned once on the measured size"
    add(method, content, done["compress_s"], target=target, planned_target=budget, **done)


def baseline_rows(add, name, base, data, args, seed, workdir, latency_limit, rows, measured):
    """The hand recipe (through `tc.compress`), uniform settings at its gzip size (at the
    planned row's for a model without one), tfmot,
    and for a latency model: its block-sparse recipe and uniform 16x4 blocks at the measured
    latency of the planned latency row (`rows`; `measured`: its sensitivity), each measured
    by `add`."""
    spec = MODELS[name]
    planned_row = next((r for r in rows if r["method"] == "planned" and "recipe" in r), None)
    if (spec.recipe or planned_row) and {"recipe", "uniform", "tfmot"} & set(args.rows):
        if spec.recipe:
            recipe = tc.Recipe.from_file(recipe_path(spec.recipe))
            layers = {n: layer.to_dict() for n, layer in recipe.layers.items()}
        else:  # no hand recipe (the MobileNets): the uniform rows match the planned row
            recipe, layers = None, planned_row["recipe"]["layers"]
        if recipe is not None and "recipe" in args.rows:
            done = run_compress(base, recipe, data, args, seed)
            add("recipe (tc.compress)", done.pop("content"), done["compress_s"], **done)
        # Uniform settings at that gzip size: their kernels gzip as the recipe's do.
        goal_bytes = kernel_bytes(base, layers)
        matched = {bits: matched_sparsity(base, goal_bytes, bits) for bits in (8, 4)}
        for bits, sparsity in matched.items() if "uniform" in args.rows else ():
            uniform = uniform_layers(base, sparsity, bits)
            content, seconds = run_recipe(base, uniform, data, args, seed)
            method = f"uniform sparsity, {bits}-bit, same gzip"
            add(method, content, seconds, setting=f"{sparsity:.1%}", layers=uniform)
        python = args.tfmot_python if "tfmot" in args.rows else None
        for run in run_tfmot(python, name, base, data, [matched[8], 0.9], args, seed, workdir):
            label = "same gzip as 8-bit uniform" if run["sparsity"] == matched[8] else "fixed"
            with open(run["tflite"], "rb") as f:
                content = f.read()
            method = f"tfmot uniform pruning + PQAT 8-bit ({label})"
            add(method, content, setting=f"{run['sparsity']:.1%}")
    if spec.latency_recipe and "latency" in args.rows:
        recipe = tc.Recipe.from_file(recipe_path(spec.latency_recipe))
        done = run_compress(base, recipe, data, args, seed)
        add(
            "latency recipe (16x4 blocks, tc.compress)",
            done.pop("content"),
            done["compress_s"],
            kernels=True,
            latency_limit_ms=latency_limit,
            **done,
        )
        planned_row = next((r for r in rows if r["method"] == "planned, latency target"), None)
        if planned_row is not None and planned_row.get("kernels_ms") is not None:
            offered = [
                n
                for n in measured["sensitivity"].layers
                if any(o.structure == "16x4" for o in measured["sensitivity"].options(n))
            ]
            uniform_block_row(add, base, offered, data, args, seed, planned_row, latency_limit)


def uniform_block_row(add, base, offered, data, args, seed, planned_row, latency_limit):
    """One 16x4 sparsity for every layer in `offered` (those the sensitivity offered 16x4
    blocks for), the one
    whose int8 file (magnitude-pruned, no fine-tuning) runs with our kernels closest to the
    planned latency row's measured latency; then fine-tuned as the others and measured."""
    timed = block_latencies(base, offered, data, args.latency_runs)
    goal_ms = planned_row["kernels_ms"]
    best = min(timed, key=lambda t: abs(t["kernels_ms"] - goal_ms))
    prune = {"structure": "16x4", "sparsity": best["sparsity"]}
    recipe = {
        "layers": {n: {"prune": dict(prune)} for n in offered},
        "fine_tune": {"epochs": args.prune_epochs},
        "qat": {"epochs": args.qat_epochs},
    }
    done = run_compress(base, recipe, data, args, seed)
    add(
        "uniform 16x4 blocks, same latency as planned",
        done.pop("content"),
        done["compress_s"],
        kernels=True,
        setting=f"{best['sparsity']:.0%} ({', '.join(offered)})",
        latency_limit_ms=latency_limit,
        matched_to_ms=goal_ms,
        block_latencies=timed,
        **done,
    )
