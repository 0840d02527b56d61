"""Wall time of `tc.sensitivity` in 1 and 2 processes (`processes=2`), LeNet-300-100 and the
small CNN on 1,000 MNIST-5k images, each from an empty latency cache; checks that both give
the same entries (latencies aside: timed in each run).

Writes results/distributed-sensitivity.json, which benchmarks/distributed_report.py shows.

Usage: python -m benchmarks.sensitivity_processes [--models lenet small_cnn] [--no-latency]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

from benchmarks.harness import environment
from tfcompress.utils.io import atomic_write_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "results", "distributed-sensitivity.json")
SAMPLES = 1000


def _effects(result) -> list:
    return [
        dataclasses.astuple(dataclasses.replace(e, latency_ms=None, latency_ms_kernels=None))
        for e in result.entries
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet", "small_cnn"])
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import tfcompress as tc

    mnist = tc.datasets.load_mnist5k()
    records = []
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = tc.models.lenet_300_100() if name == "lenet" else tc.models.small_cnn()
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(mnist.x_train, mnist.y_train, epochs=1, batch_size=128, verbose=0)
        data = mnist.x_train[:SAMPLES]
        validation = (mnist.x_test[:SAMPLES], mnist.y_test[:SAMPLES])
        results = {}
        for processes in (1, 2):
            with tempfile.TemporaryDirectory() as cache:
                before = os.getloadavg()[0]
                start = time.perf_counter()
                results[processes] = tc.sensitivity(
                    model, data, validation, latency=args.latency, cache_dir=cache,
                    verbose=False, processes=processes,
                )  # fmt: skip
                seconds = time.perf_counter() - start
            records.append(
                {
                    "model": name,
                    "processes": processes,
                    "seconds": round(seconds, 2),
                    "entries": len(results[processes].entries),
                    "latency": args.latency,
                    "load_average": [before, os.getloadavg()[0]],
                }
            )
            print(json.dumps(records[-1]), flush=True)
        records[-1]["equal_to_1_process"] = _effects(results[2]) == _effects(results[1])
    env = environment()
    atomic_write_text(OUT, json.dumps({"environment": env, "results": records}, indent=2))
    print(OUT)


if __name__ == "__main__":
    main()
