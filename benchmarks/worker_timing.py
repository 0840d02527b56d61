"""What a worker of benchmarks/distributed.py measures and reports, for both of its sides:
the tfcompress workers (Keras 3) and the tfmot peer (tf_keras). Standard library and numpy
only, so either venv can import it."""

from __future__ import annotations

import json
import os
import time


def peak_rss_mib() -> float:
    """This process's peak RSS (`VmHWM`: since its exec, unlike `getrusage`, which keeps
    the forking parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    raise RuntimeError("no VmHWM in /proc/self/status")


def timed_fit(model, dataset, epochs: int, callbacks: list, callback_base: type) -> list[float]:
    """Fits one warm-up epoch (tracing), then `epochs` more, and returns each of those steps'
    seconds. `callback_base` is the Callback class of the model's Keras (Keras 3 or tf_keras)."""
    times = []

    class StepTimer(callback_base):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks)
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[*callbacks, StepTimer()])
    return times


def write_worker_report(folder: str, index: int, times: list, variable_bytes: int) -> None:
    """Writes worker `index`'s step times, variable bytes and peak RSS to
    `folder/worker_<index>.json` (through a temporary file, then a rename)."""
    report = {"times": times, "variable_bytes": variable_bytes, "peak_rss_mib": peak_rss_mib()}
    path = os.path.join(folder, f"worker_{index}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(report, f)
    os.replace(path + ".tmp", path)
