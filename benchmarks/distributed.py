"""Step time of plain, pruned and QAT training on 1, 2 and 3 local workers (MWMS, CPU).

Each configuration is one local cluster of worker processes on 127.0.0.1
(`tfcompress.distribute.MultiWorkerMirroredStrategy`), training with `model.fit` on MNIST-5k
at a fixed global batch; the chief times every step after a first warm-up epoch. A run of
this script measures every (model, technique, workers) cell, so the ratios in one table come
from one run on one machine.

Usage: python -m benchmarks.distributed [--workers 1 2 3] [--models lenet small_cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

GLOBAL_BATCH, SAMPLES = 96, 1536  # 16 steps; 96 splits evenly over 1, 2 or 3 workers
TECHNIQUES = ("plain", "pruned", "qat")
MODELS = ("lenet", "small_cnn")


def train_and_time(model_name: str, technique: str, epochs: int, out: str) -> None:
    """One worker: trains and (on the chief) writes the step times in seconds to `out`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    import tfcompress as tc
    from tfcompress.utils.io import atomic_write_text

    strategy = tc.distribute.MultiWorkerMirroredStrategy()
    mnist = tc.datasets.load_mnist5k()
    data = tf.data.Dataset.from_tensor_slices(
        (mnist.x_train[:SAMPLES], mnist.y_train[:SAMPLES])
    ).batch(GLOBAL_BATCH, drop_remainder=True)
    keras.utils.set_random_seed(0)
    callbacks = []
    with strategy.scope():
        model = tc.models.lenet_300_100() if model_name == "lenet" else tc.models.small_cnn()
        if technique == "pruned":
            model = tc.prune_low_magnitude(model, tc.ConstantSparsity(0.5, 0, frequency=4))
            callbacks.append(tc.UpdatePruningStep())
        elif technique == "qat":
            model = tc.quantize_model(model)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    times = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(data, epochs=1, verbose=0, callbacks=callbacks)  # warm-up: tracing, first steps
    times.clear()
    model.fit(data, epochs=epochs, verbose=0, callbacks=[*callbacks, StepTimer()])
    if tc.distribute.is_chief(strategy):
        atomic_write_text(out, json.dumps(times))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster(workers: int, model: str, technique: str, epochs: int, timeout: float) -> list:
    """Starts `workers` processes of this script, waits, always reaps them; the step times."""
    addresses = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "times.json")
        processes = []
        try:
            for index in range(workers):
                config = {
                    "cluster": {"worker": addresses},
                    "task": {"type": "worker", "index": index},
                }
                env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
                command = [sys.executable, "-m", "benchmarks.distributed", "--worker"]
                command += [model, technique, str(epochs), out]
                with open(os.path.join(folder, f"worker_{index}.log"), "w") as log:
                    processes.append(
                        subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=log)
                    )
            deadline = time.monotonic() + timeout
            for process in processes:
                process.wait(timeout=max(deadline - time.monotonic(), 1))
            for index, process in enumerate(processes):
                if process.returncode != 0:
                    with open(os.path.join(folder, f"worker_{index}.log")) as log:
                        raise RuntimeError(f"worker {index} failed:\n{log.read()[-3000:]}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        with open(out) as f:
            return json.load(f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per cluster")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        model, technique, epochs, out = args.worker
        train_and_time(model, technique, int(epochs), out)
        return
    from benchmarks.harness import write_results

    records, rows = [], []
    for model in args.models:
        medians = {}
        for workers in args.workers:
            for technique in TECHNIQUES:
                times = run_cluster(workers, model, technique, args.epochs, args.timeout)
                medians[technique, workers] = statistics.median(times)
                records.append(
                    {
                        "model": model,
                        "technique": technique,
                        "workers": workers,
                        "global_batch": GLOBAL_BATCH,
                        "steps": len(times),
                        "median_step_ms": 1000 * medians[technique, workers],
                        "step_ms": [1000 * t for t in times],
                    }
                )
                print(json.dumps(records[-1] | {"step_ms": None}), flush=True)
        base = medians["plain", args.workers[0]]
        for workers in args.workers:
            plain = medians["plain", workers]
            rows.append(
                [
                    model,
                    str(workers),
                    f"{1000 * plain:.1f}",
                    f"{1000 * medians['pruned', workers]:.1f}",
                    f"{1000 * medians['qat', workers]:.1f}",
                    f"{medians['pruned', workers] / plain:.2f}x",
                    f"{medians['qat', workers] / plain:.2f}x",
                    f"{plain / base:.2f}x",
                ]
            )
    headers = [
        "model",
        "workers",
        "plain (ms/step)",
        "pruned (ms/step)",
        "QAT (ms/step)",
        "pruned / plain",
        "QAT / plain",
        f"plain vs {args.workers[0]} worker(s)",
    ]
    notes = (
        f"MNIST-5k, {SAMPLES} samples, global batch {GLOBAL_BATCH} split over the workers "
        "(`tfcompress.distribute.MultiWorkerMirroredStrategy`, one CPU replica per worker "
        "process, collectives over 127.0.0.1); pruned: `prune_low_magnitude` 50% with "
        "`UpdatePruningStep` (masks every 4 steps); QAT: `quantize_model`. Step time: median "
        f"over {args.epochs} epoch(s) after a warm-up epoch, timed on the chief around each "
        "`fit` step (Keras callbacks, all-reduce included). All workers share this machine's "
        "cores, so more workers add communication without adding compute: the last column "
        "shows the cost of the collectives, not a speed-up one would see across machines. "
        "QAT adds one small all-gather per activation quantizer per step on 2+ workers (its "
        "ranges follow the global batch's min and max), which is most of its extra time there."
    )
    paths = write_results(
        "distributed",
        "Multi-worker training step time (MWMS, local CPU workers)",
        headers,
        rows,
        records,
        notes,
    )
    print("\n".join(paths))


if __name__ == "__main__":
    main()
