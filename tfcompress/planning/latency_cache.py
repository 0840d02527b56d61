"""Latencies measured once per CPU: a JSON file per CPU, interpreter and TensorFlow version.

The file is `latency-<cpu id>.json` in `cache_dir` (default `$TFCOMPRESS_CACHE_DIR`, else
`~/.cache/tfcompress`). The CPU id names what the default int8 kernels can use on this CPU
(`tfcompress.kernels.host_kind()`), the CPU's model name, the interpreter runtime and the
TensorFlow version, so another machine or version never reads another's figures. Each
entry maps a key (op kind, shapes, weight variant) to the median latencies of one
`.tflite` at batch 1 with one thread: `latency_ms` in the default interpreter (XNNPACK) and
`latency_ms_kernels` with `KernelDelegate(nodes="auto")`, None where it claims no node.
"""

from __future__ import annotations

import json
import os
import platform
import re
import warnings

import numpy as np
import tensorflow as tf

from tfcompress.export.interpreter import TFLiteModel
from tfcompress.kernels import KernelDelegate, KernelsNotBuiltError, host_kind
from tfcompress.runtime import runtime
from tfcompress.utils.io import atomic_write_text

VERSION = 1
ENV_VAR = "TFCOMPRESS_CACHE_DIR"
WARMUP, RUNS = 5, 50


def cpu_model_name() -> str:
    """The CPU's model name (`/proc/cpuinfo`), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_id() -> str:
    """This machine's cache id: kernel host kind, CPU model, interpreter runtime, TF version."""
    try:
        host = host_kind()
    except KernelsNotBuiltError:
        host = "no-kernels"
    text = f"{host}-{cpu_model_name()}-{runtime().name}-tf{tf.__version__}"
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def default_cache_dir() -> str:
    return os.environ.get(ENV_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "tfcompress")


class LatencyCache:
    """The measured latencies of this CPU, read from and written back to its JSON file.

    Args:
        cache_dir: The folder of the cache files (see the module docstring for the default).

    Example:
        >>> import tempfile
        >>> from tfcompress.planning.latency_cache import LatencyCache
        >>> folder = tempfile.mkdtemp()
        >>> cache = LatencyCache(folder)
        >>> cache.put("FC|demo", {"latency_ms": 0.01, "latency_ms_kernels": None})
        >>> _ = cache.save()
        >>> LatencyCache(folder).get("FC|demo")
        {'latency_ms': 0.01, 'latency_ms_kernels': None}
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cpu = cpu_id()
        self.folder = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = os.path.join(self.folder, f"latency-{self.cpu}.json")
        self.entries: dict[str, dict] = self._read()
        self._new: dict[str, dict] = {}

    def _read(self) -> dict[str, dict]:
        """The file's entries; none when it is missing, unreadable or of another CPU id."""
        if not os.path.isfile(self.path):
            return {}
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            warnings.warn(
                f"Ignoring the unreadable latency cache {self.path!r} ({err}); it will be "
                "measured again and rewritten.",
                stacklevel=3,
            )
            return {}
        if data.get("version") != VERSION or data.get("cpu") != self.cpu:
            return {}
        return dict(data.get("entries", {}))

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, value: dict) -> None:
        self.entries[key] = value
        self._new[key] = value

    def save(self) -> str:
        """Writes the entries (with those other processes added meanwhile) atomically."""
        os.makedirs(self.folder, exist_ok=True)
        merged = {**self._read(), **self._new}
        self.entries = {**merged, **self.entries}
        data = {"version": VERSION, "cpu": self.cpu, "entries": merged}
        return atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))


def measure_latency(content: bytes, sample: np.ndarray) -> dict:
    """Median `invoke()` time of the `.tflite` `content` on the batch `sample`: in the default
    interpreter, and with our kernels where `KernelDelegate(nodes="auto")` claims a node
    (None when it claims none or the kernel library is not built)."""
    default = TFLiteModel(content).latency(sample, warmup=WARMUP, runs=RUNS)["median_ms"]
    try:
        delegate = KernelDelegate(nodes="auto")
    except KernelsNotBuiltError:
        return {"latency_ms": default, "latency_ms_kernels": None}
    runner = TFLiteModel(content, delegates=[delegate])
    if not delegate.counters().get("nodes_claimed"):
        return {"latency_ms": default, "latency_ms_kernels": None}
    ours = runner.latency(sample, warmup=WARMUP, runs=RUNS)["median_ms"]
    return {"latency_ms": default, "latency_ms_kernels": ours}
