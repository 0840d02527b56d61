"""Pruning on MNIST-5k, tfcompress side by side with tfmot in one run.

Both start from the same pretrained weights, prune with the same polynomial
schedule, see the same data in the same order for the same number of steps,
and are measured by the same interpreter helper. tfmot runs in its own process
(benchmarks/tfmot_pruning_peer.py) because it needs tf_keras. Then the small
CNN is channel-pruned to 50% of its filters and units, shrunk, and timed
against the unpruned CNN.

Run from the repository root (needs the `tfmot` extra for the peer rows):
    python -m benchmarks.pruning [--pretrain_epochs N] [--prune_epochs N]
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

import keras
import numpy as np

import tfcompress as tc
from benchmarks.harness import write_results
from tfcompress.core.blocks import BLOCK_SHAPE
from tfcompress.reporting.table import render_table

OUTPUT_LAYER = "logits"


class StepTimer(keras.callbacks.Callback):
    """Median duration of a training step (the first 5 steps, with tracing, are left out)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)

    @property
    def median(self) -> float:
        return float(np.median(self.times[5:]))


def fit(model, x, y, callbacks=()) -> float:
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    timer = StepTimer()
    model.fit(
        x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=[*callbacks, timer]
    )
    return timer.median


def clone_with_weights(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def kernel_sizes(model: keras.Model) -> dict[str, int]:
    return {r.name: r.kernel_params for r in tc.report(model).layers if r.kernel_params}


def variants(model: keras.Model, sparsity: float) -> list[tuple[str, dict]]:
    """tfcompress configurations. Targets are set so that the sparsity over *all* kernels equals
    `sparsity`, as for tfmot, also when layers are spared."""
    sizes = kernel_sizes(model)
    total = sum(sizes.values())

    def target(spared):
        return min(0.99, sparsity * total / (total - sum(sizes[name] for name in spared)))

    blocked_out = [n for n in sizes if n == OUTPUT_LAYER or n == "conv1"]
    return [
        ("unstructured, per layer (tfmot's setup)", {"sparsity": sparsity}),
        (
            "unstructured, global, output spared",
            {"sparsity": target([OUTPUT_LAYER]), "scope": "global", "skip": [OUTPUT_LAYER]},
        ),
        (
            "16x4 blocks, per layer",
            {"sparsity": target(blocked_out), "skip": blocked_out, "block_size": BLOCK_SHAPE},
        ),
    ]


def measure(label_model, label, content_by_mode, data, latency_runs) -> dict:
    row = {"model": label_model, "method": label}
    for mode, content in content_by_mode.items():
        result = tc.report(
            tflite=content, data=(data.x_test, data.y_test), latency_runs=latency_runs
        )
        row[f"{mode}_accuracy"] = result.summary["tflite_accuracy"]
        row[f"{mode}_gzip_bytes"] = result.summary["gzip_bytes"]
        if mode == "dynamic":  # the sparsity column is read off the dynamic-range file
            row["sparsity"] = result.summary["tflite_sparsity"]
    return row


def run_tfmot(name, weights, x, y, calibration, jobs, workdir, epochs) -> dict | None:
    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        print("tfmot is not installed (pip install '.[tfmot]'): peer rows skipped")
        return None
    npz = os.path.join(workdir, f"{name}.npz")
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    np.savez(
        npz,
        n_weights=len(weights),
        x=x,
        y=y,
        calibration=calibration,
        epoch=len(x) // epochs,
        **arrays,
    )
    job = {
        "model": name,
        "npz": npz,
        "runs": jobs,
        "out": os.path.join(workdir, name),
        "result": os.path.join(workdir, f"{name}.json"),
    }
    job_path = os.path.join(workdir, f"{name}_job.json")
    json.dump(job, open(job_path, "w"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks.tfmot_pruning_peer", job_path], check=True, env=env
    )
    return json.load(open(job["result"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pretrain_epochs", type=int, default=8)
    parser.add_argument("--prune_epochs", type=int, default=6)
    parser.add_argument("--latency_runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = tc.datasets.load_mnist5k(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    order = np.concatenate([rng.permutation(len(data.x_train)) for _ in range(args.prune_epochs)])
    x, y = data.x_train[order], data.y_train[order]  # the same order for every run
    steps = -(-len(x) // 64)
    epoch = len(data.x_train)
    end_step, frequency = int(0.7 * steps), 10
    calibration = data.x_train[:200]
    workdir = tempfile.mkdtemp(prefix="tfcompress-bench-")
    rows, records = [], []

    for builder in (tc.models.lenet_300_100, tc.models.small_cnn):
        keras.utils.set_random_seed(args.seed)
        base = builder()
        base.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        base.fit(data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=64, verbose=2)
        name = base.name
        dense = measure(
            name,
            "dense (no pruning)",
            {
                "dynamic": tc.export_tflite(base, mode="dynamic"),
                "int8": tc.export_tflite(base, mode="int8", representative_data=calibration),
            },
            data,
            args.latency_runs,
        )
        records.append({**dense, "target": 0.0, "step_ratio": 1.0})

        jobs = []
        for sparsity in (0.8, 0.9):
            jobs.append({"sparsity": sparsity, "end_step": end_step, "frequency": frequency})
            configs = [*variants(base, sparsity)]
            if sparsity == 0.8:
                two_four = {
                    "sparsity": 0.5,
                    "sparsity_m_by_n": (2, 4),
                    "skip": [n for n in ("conv1", OUTPUT_LAYER) if n in kernel_sizes(base)],
                }
                configs.append(("2:4, output spared (50%)", two_four))
            for label, config in configs:
                config = dict(config)
                target = config.pop("sparsity")
                schedule = tc.PolynomialDecay(0.0, target, 0, end_step, frequency=frequency)
                plain_step = fit(
                    clone_with_weights(base), x[:epoch], y[:epoch]
                )  # adjacent baseline
                pruned = tc.prune_low_magnitude(clone_with_weights(base), schedule, **config)
                step = fit(pruned, x, y, [tc.UpdatePruningStep()])
                plain = tc.strip_pruning(pruned)
                row = measure(
                    name,
                    f"tfcompress: {label}",
                    {
                        "dynamic": tc.export_tflite(plain, mode="dynamic"),
                        "int8": tc.export_tflite(
                            plain, mode="int8", representative_data=calibration
                        ),
                    },
                    data,
                    args.latency_runs,
                )
                records.append(
                    {
                        **row,
                        "target": sparsity if "2:4" not in label else 0.5,
                        "step_ratio": step / plain_step,
                    }
                )
        peer = run_tfmot(
            name, base.get_weights(), x, y, calibration, jobs, workdir, args.prune_epochs
        )
        for run in (peer or {}).get("runs", []):
            contents = {mode: open(path, "rb").read() for mode, path in run["tflite"].items()}
            row = measure(name, "tfmot: unstructured, per layer", contents, data, args.latency_runs)
            records.append(
                {
                    **row,
                    "target": run["sparsity_target"],
                    "step_ratio": run["step_s"] / run["plain_step_s"],
                }
            )

    for r in records:
        rows.append(
            [
                r["model"],
                r["method"],
                f"{r['target']:.0%}",
                f"{r['sparsity']:.3f}",
                f"{r['dynamic_accuracy']:.3f}",
                f"{r['int8_accuracy']:.3f}",
                f"{r['dynamic_gzip_bytes']:,}",
                f"{r['int8_gzip_bytes']:,}",
                f"{r['step_ratio']:.2f}",
            ]
        )

    channel = channel_benchmark(data, x, y, calibration, args)
    records.append({"channel_pruning": channel})
    headers = [
        "model",
        "method",
        "target",
        "sparsity",
        "acc. dynamic",
        "acc. int8",
        "gzip dynamic",
        "gzip int8",
        "step time vs plain",
    ]
    notes = (
        f"MNIST-5k (4,000 / 1,000, seed {args.seed}). Each model is pretrained for "
        f"{args.pretrain_epochs} epochs, then every method fine-tunes the same weights for "
        f"{args.prune_epochs} epochs ({steps} steps of 64, the same pre-shuffled order) with "
        f"PolynomialDecay(0 -> target, end_step={end_step}, frequency={frequency}). `sparsity` "
        "is the achieved fraction of zeros over all kernels of the dynamic-range `.tflite`; "
        "tfcompress targets are raised on the pruned layers so that this overall figure matches "
        "the target when layers are spared. Accuracy is the `.tflite`'s on the 1,000 test "
        "images (0.001 = one image). Step time: median training step with pruning over the "
        "median plain (unpruned) step of one epoch timed right before it (the same data, in the "
        "same process; run-to-run drift on this shared machine is about 20%).\n\n"
        "## Channel pruning + shrink (small CNN, 50% of filters and units)\n\n"
        + render_table(
            list(channel[0].keys()), [list(map(str, r.values())) for r in channel], markdown=True
        )
        + "\n\nLatency: interpreter `invoke()` on one image, 1 thread, default XNNPACK, median "
        f"of {args.latency_runs} runs; both models measured in this process one after the other."
    )
    paths = write_results("pruning", "Pruning: tfcompress vs tfmot", headers, rows, records, notes)
    print(open(paths[1], encoding="utf-8").read())


def channel_benchmark(data, x, y, calibration, args) -> list[dict]:
    keras.utils.set_random_seed(args.seed)
    base = tc.models.small_cnn()
    base.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    base.fit(data.x_train, data.y_train, epochs=args.pretrain_epochs, batch_size=64, verbose=2)
    steps = -(-len(x) // 64)
    schedule = tc.PolynomialDecay(0.0, 0.5, 0, int(0.7 * steps), frequency=10)
    pruned = tc.prune_low_magnitude(clone_with_weights(base), schedule, channel_norm="L1")
    fit(pruned, x, y, [tc.UpdatePruningStep()])
    small = tc.pruning.shrink(pruned)
    out = []
    for label, model in (("small CNN", base), ("channel-pruned 50% + shrink", small)):
        for mode in ("float32", "int8"):
            content = tc.export_tflite(model, mode=mode, representative_data=calibration)
            s = tc.report(
                model, content, data=(data.x_test, data.y_test), latency_runs=args.latency_runs
            ).summary
            out.append(
                {
                    "model": label,
                    "mode": mode,
                    "params": f"{s['params']:,}",
                    "MACs": f"{s['macs']:,}",
                    "accuracy": f"{s['tflite_accuracy']:.3f}",
                    "latency (ms)": f"{s['latency_ms']:.4f}",
                }
            )
    for mode in ("float32", "int8"):
        before, after = [float(r["latency (ms)"]) for r in out if r["mode"] == mode]
        out.append(
            {
                "model": "speed-up",
                "mode": mode,
                "params": "",
                "MACs": "",
                "accuracy": "",
                "latency (ms)": f"{before / after:.2f}x",
            }
        )
    return out


if __name__ == "__main__":
    main()
