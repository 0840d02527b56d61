"""One shard of `sensitivity(..., processes=N)`, measured in a child process.

Run as `python -m tfcompress.planning.sensitivity_child FOLDER INDEX` by `ShardProcesses`:
reads the model, samples and options it wrote to `FOLDER`, measures shard `INDEX` and writes
`FOLDER/shard_INDEX.json`, printing its progress (options measured) on stdout.
"""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np

from tfcompress.planning.arguments import layer_options, split_data
from tfcompress.planning.sensitivity import measure
from tfcompress.planning.sensitivity_processes import PROGRESS


class _Report:
    """Progress as stdout lines for the parent (`ShardProcesses`)."""

    def update(self, done: float) -> None:
        print(f"{PROGRESS}{done:.3f}", flush=True)


def main(folder: str, index: int) -> None:
    with open(os.path.join(folder, "job.json")) as f:
        job = json.load(f)
    model = keras.saving.load_model(os.path.join(folder, "model.keras"), compile=False)
    arrays = np.load(os.path.join(folder, "data.npz"))
    data = (arrays["x"], arrays["y"]) if "y" in arrays else arrays["x"]
    x, y = split_data(data, model, "data", need_labels=False)
    chosen = layer_options(model, job["options"], None)
    settings = (job["batch_size"], job["latency"], job["cache_dir"])
    result = measure(model, x, (x, y, "data"), chosen, settings, (index, job["count"]), _Report())
    result.save(os.path.join(folder, f"shard_{index}.json"))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
