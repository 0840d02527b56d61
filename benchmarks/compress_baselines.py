"""The compression benchmark's baselines: one setting for every layer, and tfmot.

`run_recipe` executes a recipe's `layers` with the library's building blocks directly
(`prune_low_magnitude(layer_sparsity=...)`, `strip_pruning`, `quantize_model`,
`export_tflite`): the uniform rows at the same gzip size run on it. The hand recipes run
through `tc.compress` (benchmarks/compress_rows.py).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time

import keras
import numpy as np

import tfcompress as tc
from benchmarks.compress_models import LOSS
from tfcompress.planning.changes import changed_kernels
from tfcompress.planning.options import LayerOption


def clone(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


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


BLOCK_SPARSITIES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


def block_latencies(base: keras.Model, layers: list[str], data, runs: int) -> list[dict]:
    """For each of `BLOCK_SPARSITIES`: every layer of `layers` magnitude-pruned in 16x4
    blocks to it (no fine-tuning: latency depends on where the blocks are, not on the
    values), exported int8 (calibrated on 200 training images) and timed with and without
    our kernels (`compare_kernels`)."""
    found = []
    for sparsity in BLOCK_SPARSITIES:
        model = clone(base)
        option = LayerOption("prune", structure="16x4", sparsity=sparsity)
        for name in layers:
            layer = model.get_layer(name)
            layer.kernel.assign(changed_kernels(layer, option)[0])
        content = tc.export_tflite(model, mode="int8", representative_data=data.x_train[:200])
        compared = tc.compare_kernels(content, data.x_test[:100], rounds=5, runs=runs)
        found.append(
            {"sparsity": sparsity, **{k: compared[k] for k in ("default_ms", "kernels_ms")}}
        )
    return found


def run_tfmot(python, name, base, data, sparsities, args, seed, workdir) -> list[dict]:
    """tfmot's uniform pruning + pruning-preserving QAT at each sparsity, in its own process
    (benchmarks/tfmot_compress_peer.py); [] without `python`."""
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
    with open(job_path, "w", encoding="utf-8") as f:
        json.dump(job, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    subprocess.run([python, "-m", "benchmarks.tfmot_compress_peer", job_path], check=True, env=env)
    with open(job["result"], encoding="utf-8") as f:
        return json.load(f)["runs"]
