"""`Recipe`: a plain, human-editable description of a compression pipeline (YAML or JSON)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from tfcompress.planning.recipe_sections import (
    KERNELS,
    ClusteringSettings,
    DistillationSettings,
    ExportSettings,
    FineTuneSettings,
    LayerRecipe,
    PruningSettings,
    QatSettings,
    layer_entries,
    plain_mapping,
    section,
)
from tfcompress.planning.schema import check_choice, check_keys, check_mapping
from tfcompress.utils.io import atomic_write_text

VERSION = 1
KEYS = (
    "version",
    "layers",
    "pruning",
    "fine_tune",
    "distillation",
    "clustering",
    "qat",
    "export",
    "kernels",
    "plan",
)
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_HEADER = (
    "# tfcompress recipe (version 1). Edit freely: a layer not listed under `layers` stays as\n"
    "# it is. Run it with `tfcompress compress --recipe FILE` or `tc.compress(..., recipe=...)`.\n"
)


class _Loader(yaml.SafeLoader):
    """YAML as people write it: `2:4` is text (not the YAML 1.1 base-60 number 124), and
    `1e-4` is a number (YAML 1.1 wants `1.0e-4`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _format(path: str) -> str:
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"A recipe file must end in {', '.join(SUFFIXES)} (the ending picks YAML or JSON). "
            f"Received: path={os.fspath(path)!r}"
        )
    return SUFFIXES[suffix]


@dataclass(frozen=True)
class Recipe:
    """What `tfcompress.compress` does to a model: per-layer pruning, bits, rank and clustering,
    the pruning schedule, fine-tuning, distillation, QAT, export and kernel use.

    Every field has a default, so `Recipe()` is valid and means int8 export only. Sections may
    be given as the section objects of `tfcompress.planning.recipe_sections` or as plain dicts
    (as in the file); either way they are checked, and errors name the key path (e.g.
    `layers.fc1.prune.structure`), the value received and what is allowed. Files are YAML
    (`.yaml`/`.yml`) or JSON (`.json`), with the keys of `to_dict()`:

    ```yaml
    version: 1
    layers:                 # a layer not listed stays as it is (int8 with int8 export)
      conv2: {prune: {structure: 16x4, sparsity: 0.8}}
      fc1: {prune: {structure: unstructured, sparsity: 0.95}, bits: 4}
      fc2: {rank: 16}       # factorized (SVD initialised) to rank 16
      fc3: {cluster: 16}    # 16 shared weight values
    pruning: {schedule: polynomial, initial_sparsity: 0.0, begin_step: 0, end_fraction: 0.5,
              frequency: 10}
    fine_tune: {epochs: 2, batch_size: 64, learning_rate: 0.001}
    distillation: {teacher: original, alpha: 0.5, temperature: 4.0}   # null: none
    clustering: {epochs: 1, learning_rate: 0.0001}
    qat: {epochs: 1, learning_rate: 0.0001}   # epochs 0: post-training int8
    export: {mode: int8}                      # int8 | float32 | float16 | dynamic
    kernels: auto                             # auto | all | none
    plan: {...}                               # written by `plan`: why each layer got its part
    ```

    Allowed: structure unstructured | 16x4 | 2:4 (sparsity 0.5) | channels, sparsity in [0, 1),
    bits 8 | 4 (int8 export only), rank >= 1 (with bits only), cluster >= 2, schedule
    polynomial | constant. `plan_info` (key `plan`) is kept for the reader and not checked
    beyond being a mapping.

    Example:
        >>> from tfcompress.planning.recipe import Recipe
        >>> recipe = Recipe.from_dict(
        ...     {"layers": {"fc1": {"prune": {"structure": "16x4", "sparsity": 0.8}, "bits": 4}},
        ...      "fine_tune": {"epochs": 1}})
        >>> recipe.layers["fc1"].prune.sparsity, recipe.fine_tune.batch_size
        (0.8, 64)
        >>> print(recipe.summary())
        fc1: prune 16x4 to 80%, 4-bit weights
        export int8, kernels auto
        >>> path = recipe.to_file("recipe.yaml")
        >>> Recipe.from_file(path) == recipe
        True
        >>> Recipe.from_dict({"layers": {"fc1": {"prune": {"structure": "16x8"}}}})
        Traceback (most recent call last):
        ...
        ValueError: `layers.fc1.prune.structure` must be one of 'unstructured', '16x4', '2:4', \
'channels'. Received: layers.fc1.prune.structure='16x8'
    """

    version: int = VERSION
    layers: dict[str, LayerRecipe] = field(default_factory=dict)
    pruning: PruningSettings = field(default_factory=PruningSettings)
    fine_tune: FineTuneSettings = field(default_factory=FineTuneSettings)
    distillation: DistillationSettings | None = None
    clustering: ClusteringSettings = field(default_factory=ClusteringSettings)
    qat: QatSettings = field(default_factory=QatSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    kernels: str = "auto"
    plan_info: dict | None = None

    def __post_init__(self):
        if isinstance(self.version, bool) or self.version != VERSION:
            raise ValueError(
                f"`version` must be {VERSION} (the only recipe version this tfcompress reads). "
                f"Received: version={self.version!r}"
            )
        values = {
            "layers": layer_entries(self.layers),
            "pruning": section(PruningSettings, self.pruning, "pruning"),
            "fine_tune": section(FineTuneSettings, self.fine_tune, "fine_tune"),
            "distillation": None
            if self.distillation is None
            else section(DistillationSettings, self.distillation, "distillation"),
            "clustering": section(ClusteringSettings, self.clustering, "clustering"),
            "qat": section(QatSettings, self.qat, "qat"),
            "export": section(ExportSettings, self.export, "export"),
            "kernels": check_choice(self.kernels, "kernels", KERNELS),
            "plan_info": None
            if self.plan_info is None
            else plain_mapping(check_mapping(self.plan_info, "plan")),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self._check_bits()

    def _check_bits(self) -> None:
        if self.export.mode == "int8":
            return
        for name, layer in self.layers.items():
            if layer.bits is not None:
                raise ValueError(
                    f"`layers.{name}.bits` needs `export.mode` int8 (bits set the integer "
                    f"width of the kernel). Received: layers.{name}.bits={layer.bits!r}, "
                    f"export.mode={self.export.mode!r}"
                )

    def layer_names(self) -> list[str]:
        """The layers the recipe lists, in its order."""
        return list(self.layers)

    def summary(self) -> str:
        """One line per layer (what is done to it and, for a planned recipe, why), then the
        export and, for a planned recipe, the binding limit and the predicted values."""
        info = self.plan_info or {}
        rows = info.get("layers") or {}
        lines = []
        for name in [*rows, *(n for n in self.layers if n not in rows)]:
            what = self.layers[name].describe() if name in self.layers else "unchanged"
            reason = rows.get(name, {}).get("reason") if isinstance(rows, dict) else None
            lines.append(f"{name}: {what}" + (f" ({reason})" if reason else ""))
        lines.append(f"export {self.export.mode}, kernels {self.kernels}")
        predicted = info.get("predicted") or {}
        shown = [
            f"{key} {value:,.0f}" if key != "latency_ms" else f"{key} {value:.3g}"
            for key, value in predicted.items()
            if key in ("gzip_bytes", "bytes", "latency_ms", "macs")
            and isinstance(value, (int, float))
        ]
        if isinstance(predicted.get("accuracy_drop"), (int, float)):
            shown.append(
                f"accuracy_drop {predicted['accuracy_drop']:.3g} points "
                f"({predicted.get('accuracy_drop_beyond_export', 0):.3g} beyond the export)"
            )
        if shown:
            binding = info.get("binding") or "none"
            lines.append(f"binding limit: {binding}; predicted: {', '.join(shown)}")
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        """Reads the keys of `to_dict()`; missing ones take their defaults, unknown ones are
        errors (with the closest known key)."""
        data = {} if data is None else check_mapping(data, "recipe")
        check_keys(data, KEYS, "")
        values = {("plan_info" if key == "plan" else key): value for key, value in data.items()}
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain values (dicts, lists, text and numbers) in the order of the file."""
        out = {
            "version": self.version,
            "layers": {name: layer.to_dict() for name, layer in self.layers.items()},
        }
        for key in ("pruning", "fine_tune", "distillation", "clustering", "qat", "export"):
            value = getattr(self, key)
            out[key] = None if value is None else value.to_dict()
        out["kernels"] = self.kernels
        if self.plan_info is not None:
            out["plan"] = plain_mapping(self.plan_info)
        return out

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (checked again), as `dataclasses.replace`."""
        return dataclasses.replace(self, **changes)

    def to_yaml(self) -> str:
        """The recipe as YAML text, block style, keys in the order of the file."""
        body = yaml.safe_dump(
            self.to_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        return _HEADER + body

    def to_json(self) -> str:
        """The recipe as JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_file(self, path: str | os.PathLike) -> str:
        """Writes YAML (`.yaml`/`.yml`) or JSON (`.json`) atomically; returns the path."""
        text = self.to_yaml() if _format(path) == "yaml" else self.to_json()
        return atomic_write_text(path, text)

    @classmethod
    def from_text(cls, text: str, format: str = "yaml") -> Recipe:
        """Reads YAML (`format="yaml"`, which also reads JSON) or JSON text."""
        check_choice(format, "format", ("yaml", "json"))
        try:
            data = json.loads(text) if format == "json" else yaml.load(text, Loader=_Loader)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ValueError(f"The recipe is not valid {format.upper()}: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Recipe:
        """Reads a recipe file; errors say which file and which key."""
        kind = _format(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            return cls.from_text(text, kind)
        except ValueError as error:
            raise ValueError(f"Recipe file {os.fspath(path)!r}: {error}") from None
