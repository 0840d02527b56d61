"""The parts of a `Recipe`: one frozen dataclass per section, each checked when made.

Each section reads itself from a plain mapping (`from_dict(data, path)`, rejecting unknown
keys and naming the key path in every error) and writes itself back (`to_dict()`, keys in
field order). Constructing a section directly runs the same checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tfcompress.planning.schema import (
    check_choice,
    check_int,
    check_keys,
    check_mapping,
    check_number,
)

STRUCTURES = ("unstructured", "16x4", "2:4", "channels")
BITS = (8, 4)
SCHEDULES = ("polynomial", "constant")
EXPORT_MODES = ("int8", "float32", "float16", "dynamic")
KERNELS = ("auto", "all", "none")
TEACHERS = ("original",)

Rule = Callable[[Any, str], Any]


def _optional(rule: Rule) -> Rule:
    return lambda value, path: None if value is None else rule(value, path)


def _sparsity(value: Any, path: str) -> float:
    return check_number(value, path, 0.0, 1.0, high_open=True)


def _positive(value: Any, path: str) -> float:
    return check_number(value, path, 0.0, low_open=True)


def _check_two_four(structure: str, sparsity: float, path: str) -> None:
    if structure == "2:4" and sparsity != 0.5:
        raise ValueError(
            f"`{path}.sparsity` must be 0.5 with structure '2:4' (two of every four "
            f"weights are zero). Received: {path}.sparsity={sparsity!r}"
        )


class _Section:
    """Shared reading, writing and checking; subclasses are dataclasses that set `RULES`
    (field name -> check) and `PATH` (their key in the recipe)."""

    RULES: ClassVar[dict[str, Rule]] = {}
    PATH: ClassVar[str] = ""

    def __post_init__(self):
        for name, rule in self.RULES.items():
            object.__setattr__(self, name, rule(getattr(self, name), f"{self.PATH}.{name}"))

    @classmethod
    def from_dict(cls, data: Any, path: str | None = None):
        """The section from a mapping of some or all of its keys (the rest take defaults)."""
        path = cls.PATH if path is None else path
        data = check_mapping(data, path)
        check_keys(data, cls.RULES, path)
        values = {key: cls.RULES[key](value, f"{path}.{key}") for key, value in data.items()}
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain values in field order, for YAML or JSON."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class PruneSpec(_Section):
    """How one layer is pruned: `structure` in STRUCTURES, `sparsity` in [0, 1)
    (for "2:4" always 0.5; for "channels" the fraction of output channels removed)."""

    structure: str = "unstructured"
    sparsity: float = 0.5
    RULES: ClassVar[dict[str, Rule]] = {
        "structure": lambda v, p: check_choice(v, p, STRUCTURES),
        "sparsity": _sparsity,
    }
    PATH: ClassVar[str] = "prune"

    def __post_init__(self):
        super().__post_init__()
        _check_two_four(self.structure, self.sparsity, self.PATH)

    @classmethod
    def from_dict(cls, data: Any, path: str | None = None) -> PruneSpec:
        path = cls.PATH if path is None else path
        data = check_mapping(data, path)
        check_keys(data, cls.RULES, path)
        structure = check_choice(data.get("structure"), f"{path}.structure", STRUCTURES)
        if "sparsity" not in data and structure != "2:4":
            raise ValueError(
                f"`{path}.sparsity` is missing: give a number in [0, 1) "
                f"(0.8 prunes 80% of the weights)."
            )
        sparsity = _sparsity(data.get("sparsity", 0.5), f"{path}.sparsity")
        _check_two_four(structure, sparsity, path)
        return cls(structure, sparsity)


@dataclass(frozen=True)
class LayerRecipe(_Section):
    """What happens to one layer; None everywhere leaves it as it is (int8 with int8 export).

    `prune` (a PruneSpec), `bits` in BITS for its kernel, `rank` (>= 1: factorized into two
    layers, SVD initialised), `cluster` (>= 2 shared weight values). `rank` combines with
    `bits` only.
    """

    prune: PruneSpec | None = None
    bits: int | None = None
    rank: int | None = None
    cluster: int | None = None
    RULES: ClassVar[dict[str, Rule]] = {
        "prune": lambda v, p: (
            v if v is None or isinstance(v, PruneSpec) else PruneSpec.from_dict(v, p)
        ),
        "bits": _optional(lambda v, p: check_choice(v, p, BITS)),
        "rank": _optional(lambda v, p: check_int(v, p, 1)),
        "cluster": _optional(lambda v, p: check_int(v, p, 2)),
    }
    PATH: ClassVar[str] = "layers.<name>"

    @classmethod
    def from_dict(cls, data: Any, path: str | None = None) -> LayerRecipe:
        path = cls.PATH if path is None else path
        layer = super().from_dict({} if data is None else data, path)
        layer.check(path)
        return layer

    def check(self, path: str) -> None:
        """Raises when the parts do not combine (rank with pruning or clustering)."""
        if self.rank is not None:
            other = [key for key in ("prune", "cluster") if getattr(self, key) is not None]
            if other:
                raise ValueError(
                    f"`{path}.rank` cannot be combined with `{path}.{other[0]}`: a factorized "
                    f"layer becomes two new layers. Give either rank (with bits) or "
                    f"{' / '.join(other)}. Received: rank={self.rank!r}, "
                    f"{other[0]}={self.to_dict()[other[0]]!r}"
                )

    def to_dict(self) -> dict:
        """Only the parts that are set."""
        out = {}
        for key, value in super().to_dict().items():
            if value is not None:
                out[key] = value.to_dict() if isinstance(value, PruneSpec) else value
        return out

    def describe(self) -> str:
        """In words: `prune 16x4 to 80%, 4-bit weights`, `rank 16`, `unchanged`."""
        parts = []
        if self.prune is not None:
            parts.append(f"prune {self.prune.structure} to {self.prune.sparsity:.0%}")
        if self.rank is not None:
            parts.append(f"rank {self.rank}")
        if self.cluster is not None:
            parts.append(f"{self.cluster} clusters")
        if self.bits is not None:
            parts.append(f"{self.bits}-bit weights")
        return ", ".join(parts) or "unchanged"

    def changes(self) -> bool:
        """Whether the layer is changed beyond the export (8 bits counts as no change)."""
        return any(v is not None for v in (self.prune, self.rank, self.cluster)) or self.bits == 4


@dataclass(frozen=True)
class PruningSettings(_Section):
    """The pruning schedule, shared by every pruned layer: `schedule` in SCHEDULES; the
    sparsity rises from `initial_sparsity` at `begin_step` to each layer's own by
    `end_fraction` of the fine-tuning steps, updated every `frequency` steps."""

    schedule: str = "polynomial"
    initial_sparsity: float = 0.0
    begin_step: int = 0
    end_fraction: float = 0.5
    frequency: int = 10
    RULES: ClassVar[dict[str, Rule]] = {
        "schedule": lambda v, p: check_choice(v, p, SCHEDULES),
        "initial_sparsity": _sparsity,
        "begin_step": lambda v, p: check_int(v, p, 0),
        "end_fraction": lambda v, p: check_number(v, p, 0.0, 1.0, low_open=True),
        "frequency": lambda v, p: check_int(v, p, 1),
    }
    PATH: ClassVar[str] = "pruning"


@dataclass(frozen=True)
class FineTuneSettings(_Section):
    """Training while pruning (and after factorizing): epochs (0: none), batch size, Adam
    learning rate."""

    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 0.001
    RULES: ClassVar[dict[str, Rule]] = {
        "epochs": lambda v, p: check_int(v, p, 0),
        "batch_size": lambda v, p: check_int(v, p, 1),
        "learning_rate": _positive,
    }
    PATH: ClassVar[str] = "fine_tune"


@dataclass(frozen=True)
class DistillationSettings(_Section):
    """Distillation during fine-tuning: `teacher` "original" (the model before compression),
    `alpha` the weight of the label loss (>= 0; the teacher's loss has weight 1), `temperature`
    of the soft targets (> 0)."""

    teacher: str = "original"
    alpha: float = 0.5
    temperature: float = 4.0
    RULES: ClassVar[dict[str, Rule]] = {
        "teacher": lambda v, p: check_choice(v, p, TEACHERS),
        "alpha": lambda v, p: check_number(v, p, 0.0),
        "temperature": _positive,
    }
    PATH: ClassVar[str] = "distillation"


@dataclass(frozen=True)
class ClusteringSettings(_Section):
    """Fine-tuning of the clustered layers: epochs (0: none) and learning rate."""

    epochs: int = 1
    learning_rate: float = 0.0001
    RULES: ClassVar[dict[str, Rule]] = {
        "epochs": lambda v, p: check_int(v, p, 0),
        "learning_rate": _positive,
    }
    PATH: ClassVar[str] = "clustering"


@dataclass(frozen=True)
class QatSettings(_Section):
    """Quantization-aware training: epochs (0: post-training int8 with calibration) and
    learning rate."""

    epochs: int = 1
    learning_rate: float = 0.0001
    RULES: ClassVar[dict[str, Rule]] = dict(ClusteringSettings.RULES)
    PATH: ClassVar[str] = "qat"


@dataclass(frozen=True)
class ExportSettings(_Section):
    """The `.tflite` written at the end: `mode` in EXPORT_MODES."""

    mode: str = "int8"
    RULES: ClassVar[dict[str, Rule]] = {"mode": lambda v, p: check_choice(v, p, EXPORT_MODES)}
    PATH: ClassVar[str] = "export"


def section(cls: type, value: Any, path: str):
    """`value` as a `cls` section: kept when it already is one, read when a mapping."""
    if isinstance(value, cls):
        return value
    return cls.from_dict(value, path)


def layer_entries(value: Any, path: str = "layers") -> dict[str, LayerRecipe]:
    """The `layers` section: layer name -> LayerRecipe (a mapping or LayerRecipe per name)."""
    value = {} if value is None else check_mapping(value, path)
    out = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"`{path}` keys must be layer names (non-empty text). Received: {name!r}"
            )
        where = f"{path}.{name}"
        if isinstance(entry, LayerRecipe):
            entry.check(where)
            out[name] = entry
        else:
            out[name] = LayerRecipe.from_dict(entry, where)
    return out


def plain_mapping(value: Mapping) -> dict:
    """A deep copy of nested mappings and sequences as plain dicts and lists (numpy
    scalars as Python numbers), ready for YAML or JSON."""
    if isinstance(value, Mapping):
        return {k: plain_mapping(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_mapping(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
