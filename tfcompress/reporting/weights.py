"""Statistics of one weight tensor.

A kernel's structure is judged on its `[out, in]` matrix by
`tfcompress.core.describe_structure`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tfcompress.core.blocks import describe_structure


@dataclass(frozen=True)
class WeightStats:
    """Counts for one weight tensor.

    Attributes:
        name: The weight's name (Keras path or TFLite tensor name).
        shape: The shape as stored.
        dtype: The stored element type.
        params: Number of elements.
        nonzero: Number of non-zero elements.
        unique: Number of distinct values (a clustered weight has few).
        structure: For kernels, `"dense"`, `"block 16x4"`, `"2:4"` or
            `"unstructured"` (see `describe_structure`); None for other weights.
        stored_values: For a tensor a `.tflite` stores sparse (TFLite sparsity),
            the values it stores; None for a tensor stored dense. The other
            counts are of the densified tensor.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    nonzero: int
    unique: int
    structure: str | None = None
    stored_values: int | None = None

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.params if self.params else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape), "sparsity": self.sparsity}


def weight_stats(
    name: str,
    value: np.ndarray,
    matrix: np.ndarray | None = None,
    stored_values: int | None = None,
) -> WeightStats:
    """Counts `value`; `matrix` is its `[out, in]` view when it is a kernel; `stored_values`
    the values a sparse `.tflite` tensor stores."""
    value = np.asarray(value)
    return WeightStats(
        name=name,
        shape=tuple(int(d) for d in value.shape),
        dtype=str(value.dtype),
        params=int(value.size),
        nonzero=int(np.count_nonzero(value)),
        unique=int(np.unique(value).size),
        structure=None if matrix is None else describe_structure(matrix),
        stored_values=stored_values,
    )
