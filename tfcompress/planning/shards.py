"""Splitting `sensitivity`'s work into shards: the units, each shard's share, its fingerprint."""

from __future__ import annotations

import hashlib
import numbers

import keras
import numpy as np

from tfcompress.planning.arguments import WHERE


def check_shard(shard, processes) -> tuple[int, int] | None:
    """`shard` as `(index, count)` (None: the whole), after checking it and `processes`."""
    if isinstance(processes, bool) or not isinstance(processes, numbers.Integral) or processes < 1:
        raise ValueError(
            f"{WHERE}: `processes` must be a positive integer. Received: processes={processes!r}"
        )
    if shard is None:
        return None
    if processes > 1:
        raise ValueError(
            f"{WHERE}: pass `shard` or `processes`, not both (`processes` measures every "
            f"shard itself). Received: shard={shard!r}, processes={processes!r}"
        )
    ok = isinstance(shard, (tuple, list)) and len(shard) == 2
    ok = ok and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in shard)
    if not ok or not 0 <= shard[0] < shard[1]:
        raise ValueError(
            f"{WHERE}: `shard` must be a pair (index, count) of integers with "
            f"0 <= index < count. Received: shard={shard!r}"
        )
    return int(shard[0]), int(shard[1])


def units(chosen: list) -> list[tuple[str, str]]:
    """Every `(layer name, option key)` to measure, `"baseline"` first per layer, in order."""
    return [
        (layer.name, key) for layer, opts in chosen for key in ["baseline", *(o.key for o in opts)]
    ]


def share(all_units: list[tuple[str, str]], shard: tuple[int, int] | None) -> set:
    """The units of `shard`: every `count`-th from `index` (all of them without a shard)."""
    if shard is None:
        return set(all_units)
    index, count = shard
    return set(all_units[index::count])


def option_count(chosen: list, shard: tuple[int, int] | None) -> int:
    """How many options (units other than baselines) `shard` measures: its progress bar's."""
    return sum(key != "baseline" for _, key in share(units(chosen), shard))


def fingerprint(model: keras.Model, x: np.ndarray, labels, batch_size: int, latency: bool) -> str:
    """A digest of what the effects depend on: the weights, the samples and labels, the batch
    size and whether latencies are measured; shards to merge must agree on it."""
    digest = hashlib.sha256(f"{batch_size}|{bool(latency)}".encode())
    for array in [*model.get_weights(), x, *([] if labels is None else [labels])]:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]
