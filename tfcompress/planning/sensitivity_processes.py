"""`ShardProcesses`: child processes measuring shards of `sensitivity` for `processes=N`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import keras
import numpy as np

from tfcompress.planning.arguments import WHERE
from tfcompress.planning.sensitivity_result import Sensitivity

PROGRESS = "progress "  # a child's stdout line: PROGRESS + options it has measured
_POLL_SECONDS = 0.2


class _Adding:
    """A progress bar's `update` that adds what the children have measured."""

    def __init__(self, bar: keras.utils.Progbar, children: ShardProcesses):
        self.bar, self.children = bar, children

    def update(self, done: float) -> None:
        self.bar.update(done + self.children.done())


class ShardProcesses:
    """Shards `0 .. count - 2` of a sensitivity, each measured in its own child process.

    The model (`model.save`), the evaluation samples and the chosen options go to a
    temporary folder; each child (`python -m tfcompress.planning.sensitivity_child`) loads
    them, measures its shard and writes it there as JSON, reporting progress on stdout. The
    caller measures the last shard meanwhile. Leaving the `with` block kills children still
    running and removes the folder. `sensitivity(..., processes=N)` is the way to use it.

    Args:
        model: The model.
        x: The evaluation samples.
        y: Their labels, or None.
        chosen: `[(layer, [LayerOption, ...]), ...]` as `layer_options` returns it.
        settings: `(batch_size, latency, cache_dir)`.
        count: The number of shards.

    """

    def __init__(self, model, x, y, chosen: list, settings: tuple, count: int):
        self.count = count
        self.folder = tempfile.mkdtemp(prefix="tfcompress-sensitivity-")
        self.processes: list[subprocess.Popen] = []
        self.progress = [0.0] * (count - 1)
        batch_size, latency, cache_dir = settings
        try:
            model.save(os.path.join(self.folder, "model.keras"))
            arrays = {"x": x} if y is None else {"x": x, "y": np.asarray(y)}
            np.savez(os.path.join(self.folder, "data.npz"), **arrays)
            job = {
                "options": {layer.name: [o.to_dict() for o in opts] for layer, opts in chosen},
                "batch_size": batch_size,
                "latency": bool(latency),
                "cache_dir": None if cache_dir is None else os.fspath(cache_dir),
                "count": count,
            }
            with open(os.path.join(self.folder, "job.json"), "w") as f:
                json.dump(job, f)
            for index in range(count - 1):
                self._start(index)
        except BaseException:
            self.close()
            raise

    def _start(self, index: int) -> None:
        command = [sys.executable, "-m", "tfcompress.planning.sensitivity_child"]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        with open(self._log(index), "w") as log:
            process = subprocess.Popen(
                [*command, self.folder, str(index)],
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
            )
        self.processes.append(process)
        threading.Thread(target=self._read, args=(index, process), daemon=True).start()

    def _log(self, index: int) -> str:
        return os.path.join(self.folder, f"shard_{index}.log")

    def _read(self, index: int, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if line.startswith(PROGRESS):
                self.progress[index] = float(line[len(PROGRESS) :])

    def done(self) -> float:
        """Options the children have measured so far."""
        return sum(self.progress)

    def adding(self, bar: keras.utils.Progbar) -> _Adding:
        """`bar` for the caller's own shard, counting the children's options too."""
        return _Adding(bar, self)

    def results(self, bar: keras.utils.Progbar, own: int) -> list[Sensitivity]:
        """Waits for the children, updating `bar` with their progress after the caller's
        `own` options; their shards, in order."""
        while any(p.poll() is None for p in self.processes):
            bar.update(own + self.done())
            time.sleep(_POLL_SECONDS)
        parts = []
        for index, process in enumerate(self.processes):
            path = os.path.join(self.folder, f"shard_{index}.json")
            if process.returncode != 0 or not os.path.isfile(path):
                with open(self._log(index)) as f:
                    tail = f.read()[-3000:]
                raise RuntimeError(
                    f"{WHERE}: shard {index} of {self.count} failed in its process (exit "
                    f"status {process.returncode}). Each child loads the model saved with "
                    "`model.save`: custom layers must be registered with "
                    f"`keras.saving.register_keras_serializable`. Its log:\n{tail}"
                )
            parts.append(Sensitivity.load(path))
        bar.update(bar.target)
        return parts

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ShardProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
