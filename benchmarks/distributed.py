"""Step time and memory of plain, pruned and QAT training on 1, 2 and 3 local workers (MWMS, CPU).

Each configuration is one local cluster of worker processes on 127.0.0.1
(`tfcompress.distribute.MultiWorkerMirroredStrategy`), training with `model.fit` on MNIST-5k
at a fixed global batch; the chief times every step after a warm-up epoch, and every worker
reports the bytes of its model's variables and its peak RSS. tfmot's pruning runs under
TensorFlow's own `tf.distribute.MultiWorkerMirroredStrategy` in its own processes (tfmot
needs tf_keras: `benchmarks/tfmot_distributed_peer.py`, in the venv `--tfmot-python`), with a
plain tf_keras run of the same model as its baseline.

Each measured cell is appended to `--cells` (JSON lines) and not measured again by a later
run with the same settings, so one run can be split over several invocations; an invocation
whose cells are all there only renders the results.

Usage: python -m benchmarks.distributed [--workers 1 2 3] [--models lenet small_cnn resnet50]
    [--tfmot-models lenet small_cnn] [--tfmot-python /work/venvs/tfmot/bin/python]
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

import numpy as np

from benchmarks.worker_timing import timed_fit, write_worker_report

# Per model: (global batch, samples, timed epochs). 96 and 24 split evenly over 1, 2 or 3
# workers; ResNet50 (32x32 inputs) takes minutes to trace per worker, so it times 4 steps.
SETTINGS = {"lenet": (96, 1536, 2), "small_cnn": (96, 1536, 1), "resnet50": (24, 96, 1)}
TECHNIQUES = ("plain", "pruned", "qat")
TFMOT_TECHNIQUES = ("tfmot_plain", "tfmot_pruned")  # tf_keras plain, tfmot pruning
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def train_and_time(model_name: str, technique: str, epochs: int, data: str, folder: str) -> None:
    """One worker: trains, times each step after a warm-up epoch, writes its report."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    import tfcompress as tc

    strategy = tc.distribute.MultiWorkerMirroredStrategy()
    arrays = np.load(data)
    global_batch = SETTINGS[model_name][0]
    dataset = tf.data.Dataset.from_tensor_slices((arrays["x"], arrays["y"]))
    dataset = dataset.batch(global_batch, drop_remainder=True)
    keras.utils.set_random_seed(0)
    callbacks = []
    with strategy.scope():
        if model_name == "lenet":
            model = tc.models.lenet_300_100()
        elif model_name == "small_cnn":
            model = tc.models.small_cnn()
        else:
            model = keras.applications.ResNet50(
                weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
            )
        if technique == "pruned":
            model = tc.prune_low_magnitude(model, tc.ConstantSparsity(0.5, 0, frequency=4))
            callbacks.append(tc.UpdatePruningStep())
        elif technique == "qat":
            model = tc.quantize_model(model)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    times = timed_fit(model, dataset, epochs, callbacks, keras.callbacks.Callback)
    index = int(strategy.cluster_resolver.task_id or 0)
    size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.variables)
    write_worker_report(folder, index, times, size)


def write_data(model: str, path: str) -> None:
    """The first samples of MNIST-5k's training set (ResNet50: padded to 32x32, 3 channels)."""
    import tfcompress as tc

    mnist = tc.datasets.load_mnist5k()
    samples = SETTINGS[model][1]
    x, y = mnist.x_train[:samples], mnist.y_train[:samples]
    if model == "resnet50":
        x = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)
    np.savez(path, x=x, y=y)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster(workers: int, command: list[str], timeout: float) -> list[dict]:
    """Starts `workers` processes of `command + [folder]`, waits, always reaps them; returns
    their reports, the chief's first."""
    addresses = [f"127.0.0.1:{p}" for p in free_ports(workers)]
    with tempfile.TemporaryDirectory() as folder:
        processes = []
        try:
            for index in range(workers):
                config = {
                    "cluster": {"worker": addresses},
                    "task": {"type": "worker", "index": index},
                }
                env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
                with open(os.path.join(folder, f"worker_{index}.log"), "w") as log:
                    processes.append(
                        subprocess.Popen(
                            [*command, folder], env=env, cwd=ROOT, stdout=log, stderr=log
                        )
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
        reports = []
        for index in range(workers):
            with open(os.path.join(folder, f"worker_{index}.json")) as f:
                reports.append(json.load(f))
        return reports


def measure(args, model: str, technique: str, workers: int, data: str) -> dict:
    epochs = SETTINGS[model][2]
    if technique.startswith("tfmot"):
        command = [args.tfmot_python, "-m", "benchmarks.tfmot_distributed_peer"]
        command += [model, technique, str(epochs), str(SETTINGS[model][0]), data]
    else:
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker"]
        command += [model, technique, str(epochs), data]
    start = time.monotonic()
    reports = run_cluster(workers, command, args.timeout)
    times = reports[0]["times"]
    return {
        "model": model,
        "technique": technique,
        "workers": workers,
        "global_batch": SETTINGS[model][0],
        "steps": len(times),
        "median_step_ms": 1000 * statistics.median(times),
        "variable_bytes": reports[0]["variable_bytes"],
        "peak_rss_mib": [r["peak_rss_mib"] for r in reports],
        "cluster_seconds": round(time.monotonic() - start, 1),
        "load_average": list(os.getloadavg()),
        "command": " ".join(["python -m benchmarks.distributed", *sys.argv[1:]]),
        "step_ms": [1000 * t for t in times],
    }


def load_cells(path: str) -> dict:
    cells = {}
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    cell = json.loads(line)
                    cells[cell["model"], cell["technique"], cell["workers"]] = cell
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--tfmot-models", nargs="*", choices=SETTINGS, default=[])
    parser.add_argument("--tfmot-python", default="/work/venvs/tfmot/bin/python")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per cluster")
    cells = os.path.join(tempfile.gettempdir(), "tfcompress-distributed-cells.jsonl")
    parser.add_argument("--cells", default=cells, help="measured cells (JSON lines)")
    parser.add_argument("--notes", help="a Markdown file of notes to add to the results")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("folder", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        model, technique, epochs, data = args.worker
        train_and_time(model, technique, int(epochs), data, args.folder)
        return
    from benchmarks.distributed_report import render

    cells = load_cells(args.cells)
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models:
            data = os.path.join(folder, f"{model}.npz")
            write_data(model, data)
            techniques = TECHNIQUES + (TFMOT_TECHNIQUES if model in args.tfmot_models else ())
            for workers in args.workers:
                for technique in techniques:
                    known = cells.get((model, technique, workers), {})
                    if known.get("global_batch") == SETTINGS[model][0]:
                        continue
                    cell = measure(args, model, technique, workers, data)
                    cells[model, technique, workers] = cell
                    with open(args.cells, "a") as f:
                        f.write(json.dumps(cell) + "\n")
                    print(json.dumps(cell | {"step_ms": None}), flush=True)
    notes = ""
    if args.notes:
        with open(args.notes) as f:
            notes = f.read().strip()
    print("\n".join(render(list(cells.values()), notes)))


if __name__ == "__main__":
    main()
