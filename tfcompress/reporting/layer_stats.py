"""`LayerStats`: one row of the compression report, from a Keras layer or a TFLite op."""

from __future__ import annotations

from dataclasses import dataclass, field

from tfcompress.reporting.weights import WeightStats


@dataclass
class LayerStats:
    """Counts for one Keras layer or one TFLite op.

    Attributes:
        name: Layer name (nested models as `outer/inner`) or the op's output tensor.
        kind: Layer class or TFLite op name.
        params: Number of weight elements (all weights, as `count_params`).
        nonzero: Non-zero weight elements.
        kernel_params: Elements of the kernels (the weights pruning acts on).
        kernel_zeros: Zero elements among them.
        structure: Sparsity structure of the largest kernel, None without kernels.
        unique: Distinct values among the kernels (a separable conv's depthwise
            and pointwise ones together), None without kernels.
        macs: Multiply-accumulates per sample, None when unknown.
        stored_bytes: Bytes of the weights as stored (float32 in Keras; the
            stored types in a `.tflite`, where INT4 packs two values per byte).
        container_bytes: The same with every value in a whole byte at least
            (INT4 counted as int8 containers), as runtimes that unpack hold them.
        weights: Per-tensor counts.
        note: Why a technique left the layer (or some of its weights) as it
            was, e.g. a pruning block that does not fit; None without one.
    """

    name: str
    kind: str
    params: int = 0
    nonzero: int = 0
    kernel_params: int = 0
    kernel_zeros: int = 0
    structure: str | None = None
    unique: int | None = None
    macs: int | None = 0
    stored_bytes: int = 0
    container_bytes: int = 0
    weights: list[WeightStats] = field(default_factory=list)
    note: str | None = None

    @property
    def sparsity(self) -> float | None:
        """Fraction of zeros among the kernel elements, None without kernels."""
        return self.kernel_zeros / self.kernel_params if self.kernel_params else None

    @property
    def float32_bytes(self) -> int:
        return 4 * self.params

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "params": self.params,
            "nonzero": self.nonzero,
            "sparsity": self.sparsity,
            "structure": self.structure,
            "unique": self.unique,
            "macs": self.macs,
            "float32_bytes": self.float32_bytes,
            "stored_bytes": self.stored_bytes,
            "container_bytes": self.container_bytes,
            "weights": [w.to_dict() for w in self.weights],
            "note": self.note,
        }

    def add_weight(
        self, stats: WeightStats, is_kernel: bool, nbytes: int, container: int | None = None
    ) -> None:
        """Adds one tensor's counts; the largest kernel sets `structure` and `unique`."""
        self.weights.append(stats)
        self.params += stats.params
        self.nonzero += stats.nonzero
        self.stored_bytes += nbytes
        self.container_bytes += nbytes if container is None else container
        if is_kernel:
            largest = max(
                (w for w in self.weights if w.structure is not None), key=lambda w: w.params
            )
            self.kernel_params += stats.params
            self.kernel_zeros += stats.params - stats.nonzero
            self.structure, self.unique = largest.structure, largest.unique
