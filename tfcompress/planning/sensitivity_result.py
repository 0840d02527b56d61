"""The result of `tfcompress.sensitivity`: per layer and option, the effect and the cost."""

from __future__ import annotations

import dataclasses
import json
import os

from tfcompress.planning.options import LayerOption
from tfcompress.planning.shard_merge import merge_shards
from tfcompress.reporting.plots import plot_sensitivity
from tfcompress.reporting.table import render_table
from tfcompress.utils.io import atomic_write_text

VERSION = 1


@dataclasses.dataclass(frozen=True)
class SensitivityEntry:
    """One layer changed by one option (or unchanged: `option` None), the rest as trained.

    Attributes:
        layer: The layer's name.
        option: The change, None for the unchanged layer (its baseline).
        accuracy_drop: Accuracy points lost on the labelled data (None without labels).
        kl: Mean KL divergence of the changed model's output distribution from the original's.
        agreement: Fraction of samples whose top-1 class is the original's.
        params: Weights the layer stores after the change (a factorized layer's two factors).
        nonzeros: Non-zero weights among them.
        macs: Multiply-accumulates per sample with a non-zero weight.
        bytes: Bytes of the layer's weights in an int8 `.tflite` (float32 for the baseline;
            see `tfcompress.planning.costs`).
        gzip_bytes: The same bytes after gzip (level 9, as the `.tflite` files).
        latency_ms: The layer alone as an int8 `.tflite` op at batch 1 in the default
            interpreter, None when not measured.
        latency_ms_kernels: The same with our kernels, None where they do not claim it.
    """

    layer: str
    option: LayerOption | None
    accuracy_drop: float | None
    kl: float
    agreement: float
    params: int
    nonzeros: int
    macs: int
    bytes: int
    gzip_bytes: int
    latency_ms: float | None = None
    latency_ms_kernels: float | None = None

    @property
    def key(self) -> str:
        """The option's key, `"baseline"` for the unchanged layer."""
        return "baseline" if self.option is None else self.option.key

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["option"] = None if self.option is None else self.option.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SensitivityEntry:
        option = data.get("option")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["option"] = None if option is None else LayerOption.from_dict(option)
        return cls(**values)


HEADER = [
    "layer",
    "option",
    "acc. drop",
    "KL",
    "top-1 agree",
    "non-zeros",
    "gzip B",
    "ms",
    "ms (ours)",
]


class Sensitivity:
    """Per-layer sensitivity and cost, as measured by `tfcompress.sensitivity`.

    Args:
        entries: One `SensitivityEntry` per layer and option, with one
            baseline (option None) per layer.
        model: Whole-model figures: `name`, `accuracy` (None without labels),
            `float_gzip_bytes`, `int8_gzip_bytes`, `latency_ms` (int8, default
            interpreter), `cpu` (where latencies were measured), `seconds` (time taken);
            `tfcompress.sensitivity` adds `macs`, `float_bytes`, `int8_bytes` and `samples`
            (how many the effects were measured on).

    Example:
        >>> from tfcompress.planning import LayerOption, Sensitivity, SensitivityEntry
        >>> entries = [
        ...     SensitivityEntry("fc1", None, 0.0, 0.0, 1.0, 2080, 2080, 2048, 8320, 7700),
        ...     SensitivityEntry("fc1", LayerOption("prune", structure="unstructured",
        ...                      sparsity=0.9), 1.5, 0.02, 0.98, 2080, 240, 2048, 2208, 700)]
        >>> result = Sensitivity(entries, {"name": "mlp", "accuracy": 0.95})
        >>> result.layers
        ['fc1']
        >>> Sensitivity.from_json(result.to_json()).entry("fc1", "prune:unstructured:0.9").kl
        0.02
    """

    def __init__(self, entries: list[SensitivityEntry], model: dict | None = None):
        self.entries = list(entries)
        self.model = dict(model or {})
        self.layers: list[str] = []
        for entry in self.entries:
            if entry.layer not in self.layers:
                self.layers.append(entry.layer)
        missing = [name for name in self.layers if self._find(name, "baseline") is None]
        if missing and self.shard is None:
            raise ValueError(
                f"Every layer needs a baseline entry (option None); these have none: {missing}"
            )

    @property
    def shard(self) -> dict | None:
        """A shard's `index`, `count`, `units` (every `[layer, key]` of the whole) and
        `fingerprint` (of the weights, data and settings); None for a whole sensitivity."""
        return self.model.get("shard")

    @classmethod
    def merge(cls, shards: list[Sensitivity]) -> Sensitivity:
        """The whole sensitivity from the shards of `tfcompress.sensitivity(..., shard=...)`.

        Checks that the shards split the same measurement (same pairs and fingerprint) and
        that each shard and each (layer, option) pair is there exactly once. The entries
        come in the unsharded order, the whole-model figures from the last shard, and
        `seconds` is the longest shard's.

        Example:
            >>> from tfcompress.planning import LayerOption, Sensitivity, SensitivityEntry
            >>> units = [["fc1", "baseline"], ["fc1", "bits:4"]]
            >>> def part(index, entry):
            ...     shard = {"index": index, "count": 2, "units": units, "fingerprint": "f0"}
            ...     return Sensitivity([entry], {"name": "mlp", "seconds": 1, "shard": shard})
            >>> base = SensitivityEntry("fc1", None, 0.0, 0.0, 1.0, 2080, 2080, 2048, 8320, 7700)
            >>> four = SensitivityEntry("fc1", LayerOption("bits", bits=4), 0.4, 0.01, 0.99,
            ...                         2080, 2080, 2048, 2208, 1900)
            >>> merged = Sensitivity.merge([part(1, four), part(0, base)])
            >>> [e.key for e in merged.entries], merged.shard
            (['baseline', 'bits:4'], None)
            >>> Sensitivity.merge([part(0, base)])
            Traceback (most recent call last):
            ValueError: Sensitivity.merge: shard(s) [1] of 2 are missing.
        """
        return merge_shards(cls, list(shards))

    def _find(self, layer: str, key: str) -> SensitivityEntry | None:
        return next((e for e in self.entries if e.layer == layer and e.key == key), None)

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise KeyError(f"No layer {layer!r} in this sensitivity. Layers: {self.layers}")

    def baseline(self, layer: str) -> SensitivityEntry:
        """The unchanged layer's entry."""
        self._check_layer(layer)
        return self._find(layer, "baseline")

    def options(self, layer: str) -> list[LayerOption]:
        """The options measured for `layer`, in the order measured."""
        self._check_layer(layer)
        return [e.option for e in self.entries if e.layer == layer and e.option is not None]

    def entry(self, layer: str, key: str) -> SensitivityEntry:
        """The entry of `layer` under the option with `key` (`"baseline"` for none)."""
        self._check_layer(layer)
        found = self._find(layer, key)
        if found is None:
            keys = [e.key for e in self.entries if e.layer == layer]
            raise KeyError(f"Layer {layer!r} has no option {key!r}. Options: {keys}")
        return found

    def to_dict(self) -> dict:
        return {
            "version": VERSION,
            "model": self.model,
            "layers": self.layers,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> Sensitivity:
        if data.get("version") != VERSION:
            raise ValueError(
                f"Unsupported sensitivity version: expected {VERSION}. "
                f"Received: version={data.get('version')!r}"
            )
        return cls([SensitivityEntry.from_dict(e) for e in data["entries"]], data.get("model"))

    @classmethod
    def from_json(cls, text: str) -> Sensitivity:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> str:
        """Writes the JSON to `path` (through a temporary file); returns the path."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Sensitivity:
        with open(path) as f:
            return cls.from_json(f.read())

    def rows(self) -> list[list[str]]:
        """One table row per entry: layer, option, drop, KL, agreement, non-zeros, bytes, ms."""

        def ms(value):
            return "-" if value is None else f"{value:.4f}"

        return [
            [
                e.layer,
                e.key,
                "-" if e.accuracy_drop is None else f"{e.accuracy_drop:+.2f}",
                f"{e.kl:.4f}",
                f"{e.agreement:.3f}",
                f"{e.nonzeros:,}",
                f"{e.gzip_bytes:,}",
                ms(e.latency_ms),
                ms(e.latency_ms_kernels),
            ]
            for e in self.entries
        ]

    def to_table(self) -> str:
        return render_table(HEADER, self.rows())

    def __str__(self) -> str:
        return self.to_table()

    def to_markdown(self) -> str:
        return render_table(HEADER, self.rows(), markdown=True)

    def plot(self, path: str | os.PathLike) -> dict:
        """Per-layer sensitivity curves as a PNG; returns the data plotted."""
        return plot_sensitivity(self.to_dict(), path)
