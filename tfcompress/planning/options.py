"""What can be done to one layer: a pruning level in a structure, weight bits, or a rank."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfcompress.core.blocks import BLOCK_SHAPE, NM_PATTERN
from tfcompress.pruning.masks import structure_problem

KINDS = ("prune", "bits", "rank")
STRUCTURES = ("unstructured", "16x4", "2:4", "channels")
BITS = (8, 4)
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)  # layers with many inputs take 97-99% (benchmarks)
ENERGIES = (0.5, 0.75, 0.9, 0.99)
# The block and N:M pattern each structure name stands for, as `prune_low_magnitude` takes them.
STRUCTURE_ARGS = {
    "unstructured": {},
    "16x4": {"block_size": BLOCK_SHAPE},
    "2:4": {"sparsity_m_by_n": NM_PATTERN},
    "channels": {"channel_norm": "L2"},
}
_PRUNABLE = (keras.layers.Dense, keras.layers.Conv2D)
_BITS_ONLY = (keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class LayerOption:
    """One change to one layer: prune it, quantize its weights to fewer bits, or factorize it.

    Attributes:
        kind: `"prune"`, `"bits"` or `"rank"`.
        structure: For `"prune"`: `"unstructured"`, `"16x4"` (blocks of 16
            outputs by 4 inputs), `"2:4"` (2 of every 4 inputs) or `"channels"`
            (whole output channels).
        sparsity: For `"prune"`: the fraction of kernel weights zeroed (0.5 for 2:4).
        bits: For `"bits"`: weight bits, 8 or 4.
        rank: For `"rank"`: the rank kept by the truncated SVD.
        energy: For `"rank"`: the share of squared singular values that rank keeps.

    Example:
        >>> option = tc.planning.LayerOption("prune", structure="16x4", sparsity=0.9)
        >>> option.key
        'prune:16x4:0.9'
        >>> tc.planning.LayerOption.from_dict(option.to_dict()) == option
        True
    """

    kind: str
    structure: str | None = None
    sparsity: float | None = None
    bits: int | None = None
    rank: int | None = None
    energy: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={self.kind!r}")
        if self.kind == "prune":
            if self.structure not in STRUCTURES:
                raise ValueError(
                    f"`structure` must be one of {STRUCTURES}. "
                    f"Received: structure={self.structure!r}"
                )
            if self.sparsity is None or not 0.0 < self.sparsity < 1.0:
                raise ValueError(
                    "`sparsity` must be in (0, 1) for pruning. "
                    f"Received: sparsity={self.sparsity!r}"
                )
        elif self.kind == "bits" and self.bits not in BITS:
            raise ValueError(f"`bits` must be one of {BITS}. Received: bits={self.bits!r}")
        elif self.kind == "rank" and (not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"`rank` must be an integer >= 1. Received: rank={self.rank!r}")

    @property
    def key(self) -> str:
        """A stable text id: `prune:16x4:0.9`, `prune:2:4:0.5`, `bits:4`, `rank:16`."""
        if self.kind == "prune":
            return f"prune:{self.structure}:{self.sparsity:g}"
        if self.kind == "bits":
            return f"bits:{self.bits}"
        return f"rank:{self.rank}"

    def to_dict(self) -> dict:
        """The fields, with `key`, as JSON-ready values."""
        return {**dataclasses.asdict(self), "key": self.key}

    @classmethod
    def from_dict(cls, config: dict) -> LayerOption:
        """The option `to_dict` described (`key` is ignored: it follows from the fields)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in fields})


def compressible(layer: keras.layers.Layer) -> bool:
    """Whether `default_options` has anything for `layer` (Dense, Conv2D, separable, depthwise)."""
    return isinstance(layer, _PRUNABLE + _BITS_ONLY) and bool(layer.weights)


def _ranks(kernel: np.ndarray, energies: tuple[float, ...]) -> list[tuple[int, float]]:
    """The ranks keeping each share of squared singular values, where they save weights."""
    matrix = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    # The squared singular values are the eigenvalues of the smaller Gram matrix (largest
    # first); far faster than an SVD of a tall kernel, and exact enough for energy shares.
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    singular = np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None)
    cumulative = np.cumsum(singular) / max(float(singular.sum()), 1e-30)
    rows, cols = matrix.shape
    found: dict[int, float] = {}
    for energy in energies:
        rank = int(np.searchsorted(cumulative, energy - 1e-12) + 1)
        if rank * (rows + cols) < rows * cols:
            found.setdefault(rank, energy)
    return sorted(found.items(), reverse=True)


def default_options(
    layer: keras.layers.Layer,
    sparsities: tuple[float, ...] = SPARSITIES,
    structures: tuple[str, ...] = STRUCTURES,
    bits: tuple[int, ...] = BITS,
    energies: tuple[float, ...] = ENERGIES,
) -> list[LayerOption]:
    """The options that fit `layer`: each structure that fits its kernel at each sparsity
    (2:4 at 0.5 only), each weight bit-width, and, for Dense layers, the SVD ranks keeping
    each energy that would save weights (as `tfcompress.factorize` would factorize them)."""
    if not compressible(layer):
        return []
    options = [LayerOption("bits", bits=b) for b in bits]
    if not isinstance(layer, _PRUNABLE):
        return options
    shape = tuple(layer.kernel.shape)
    for structure in structures:
        args = STRUCTURE_ARGS[structure]
        if structure in ("16x4", "2:4"):
            block = args.get("block_size", (1, 1))
            if structure_problem(shape, block, args.get("sparsity_m_by_n")) is not None:
                continue
        if structure == "channels" and shape[-1] < 2:
            continue
        levels = (0.5,) if structure == "2:4" else sparsities
        options += [LayerOption("prune", structure=structure, sparsity=s) for s in levels]
    if not isinstance(layer, keras.layers.Dense):
        return options
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    options += [LayerOption("rank", rank=r, energy=e) for r, e in _ranks(kernel, energies)]
    return options
