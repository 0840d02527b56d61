"""Conversion in a child process, for the steps that can crash TF's converter.

TF's calibrator dies with SIGSEGV on recurrent layers (TF 2.21: GRU, LSTM, SimpleRNN, int8
and int16x8). In a child process such a crash costs the export, not the user's process: the
SavedModel, the options and the calibration samples go to it through a folder, and the
`.tflite` bytes (or what the converter said) come back the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tfcompress.export.converter import Samples, convert_saved_model, known_failure

_OPTIONS = "options.json"  # what `convert_saved_model` gets, but the samples
_SAMPLES = "samples.npz"
_RESULT = "model.tflite"
_FAILURE = "failure.json"  # a `known_failure`
_CHILD = "import sys; from tfcompress.export.isolated import main; sys.exit(main(sys.argv[1]))"


def _save_samples(samples: Samples, path: str) -> None:
    arrays = {
        f"s{i}_{j}": np.asarray(x) for i, item in enumerate(samples) for j, x in enumerate(item)
    }
    np.savez(path, count=len(samples), width=len(samples[0]), **arrays)


def _load_samples(path: str) -> Samples:
    with np.load(path) as data:
        count, width = int(data["count"]), int(data["width"])
        return [[data[f"s{i}_{j}"] for j in range(width)] for i in range(count)]


def convert_in_child(
    work_dir: str, saved_model: str, mode: str, io_type: str, qat: bool, samples: Samples | None
) -> bytes | dict | subprocess.CompletedProcess:
    """Runs `convert_saved_model` in a fresh Python process.

    Args:
        work_dir: An empty folder (the caller removes it): inputs and result go there.
        saved_model, mode, io_type, qat, samples: As for `convert_saved_model`.

    Returns:
        The `.tflite` bytes; a `known_failure` dict when the converter refused the model; or
        the finished child (its `returncode` and `stderr`) when it crashed or failed in a way
        `known_failure` does not explain.
    """
    with open(os.path.join(work_dir, _OPTIONS), "w") as f:
        json.dump({"directory": saved_model, "mode": mode, "io_type": io_type, "qat": qat}, f)
    if samples is not None:
        _save_samples(samples, os.path.join(work_dir, _SAMPLES))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _CHILD, work_dir],
        env=env,
        capture_output=True,
        text=True,
    )
    result, failure = os.path.join(work_dir, _RESULT), os.path.join(work_dir, _FAILURE)
    if done.returncode == 0 and os.path.exists(result):
        with open(result, "rb") as f:
            return f.read()
    if done.returncode == 1 and os.path.exists(failure):
        with open(failure) as f:
            return json.load(f)
    return done


def main(work_dir: str) -> int:
    """The child's side: converts as `options.json` says; 1 when the converter refused."""
    with open(os.path.join(work_dir, _OPTIONS)) as f:
        options = json.load(f)
    samples_path = os.path.join(work_dir, _SAMPLES)
    samples = _load_samples(samples_path) if os.path.exists(samples_path) else None
    try:
        content = convert_saved_model(samples=samples, **options)
    except Exception as err:  # the converter raises its own (non-public) error types
        failure = known_failure(str(err))
        if failure is None:
            raise
        with open(os.path.join(work_dir, _FAILURE), "w") as f:
            json.dump(failure, f)
        return 1
    with open(os.path.join(work_dir, _RESULT), "wb") as f:
        f.write(content)
    return 0
