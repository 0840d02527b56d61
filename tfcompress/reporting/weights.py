"""Statistics of one weight tensor, and detection of block and N:M sparsity structure.

Structure is judged on the weight as an `[out, in]` matrix: rows are output
channels and columns are inputs, which is how TFLite stores FULLY_CONNECTED
weights and, flattened over the kernel window, CONV_2D weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BLOCK_SHAPE = (16, 4)  # (output channels, inputs): the block of our int8 kernel
NM_PATTERN = (2, 4)  # at most N non-zeros in every M consecutive inputs


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
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    nonzero: int
    unique: int
    structure: str | None = None

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.params if self.params else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape), "sparsity": self.sparsity}


def tiles(matrix: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """`[rows, cols]` -> `[rows/br, br, cols/bc, bc]`, zero-padded so edge tiles may be partial."""
    rows, cols = matrix.shape
    br, bc = block
    padded = np.pad(matrix, ((0, -rows % br), (0, -cols % bc)))
    return padded.reshape(padded.shape[0] // br, br, padded.shape[1] // bc, bc)


def expand_tiles(per_tile: np.ndarray, block: tuple[int, int], shape: tuple) -> np.ndarray:
    """Inverse of `tiles` for one value per tile: repeat it over the tile, crop to `shape`."""
    return np.kron(per_tile, np.ones(block, dtype=per_tile.dtype))[: shape[0], : shape[1]]


def _live_tiles(matrix: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Per tile of `block` shape: does it hold a non-zero? Edge tiles may be partial."""
    return tiles(matrix != 0, block).any(axis=(1, 3))


def zero_block_fraction(matrix: np.ndarray, block: tuple[int, int] = BLOCK_SHAPE) -> float:
    """Fraction of `block`-shaped tiles of `matrix` that are all zero."""
    return float(1.0 - _live_tiles(matrix, block).mean())


def is_block_sparse(
    matrix: np.ndarray, block: tuple[int, int] = BLOCK_SHAPE, min_fraction: float = 0.95
) -> bool:
    """True when at least `min_fraction` of the zeros lie in all-zero tiles.

    Quantizing a block-pruned weight rounds a few small kept weights to zero
    inside live tiles; those stray zeros do not change the structure.
    """
    zeros = matrix.size - np.count_nonzero(matrix)
    if zeros == 0:
        return False
    live = _live_tiles(matrix, block)
    live_elements = expand_tiles(live, block, matrix.shape)
    stray = np.count_nonzero(live_elements & (matrix == 0))
    return bool(stray <= (1.0 - min_fraction) * zeros and not live.all())


def satisfies_n_m(matrix: np.ndarray, n: int = NM_PATTERN[0], m: int = NM_PATTERN[1]) -> bool:
    """True when every group of `m` consecutive inputs of each row has at most `n` non-zeros.

    The number of inputs must be a multiple of `m`.
    """
    rows, cols = matrix.shape
    if cols % m:
        return False
    groups = (matrix != 0).reshape(rows, cols // m, m).sum(axis=-1)
    return bool((groups <= n).all())


def describe_structure(matrix: np.ndarray) -> str:
    """Names the sparsity structure of an `[out, in]` matrix.

    Returns:
        `"dense"` (no zeros), `"block 16x4"` (at least 95% of the zeros in whole
        16x4 tiles, see `is_block_sparse`),
        `"2:4"` (at most 2 non-zeros in every 4 consecutive inputs) or
        `"unstructured"`.
    """
    if np.count_nonzero(matrix) == matrix.size:
        return "dense"
    if is_block_sparse(matrix):
        return f"block {BLOCK_SHAPE[0]}x{BLOCK_SHAPE[1]}"
    if satisfies_n_m(matrix):
        return f"{NM_PATTERN[0]}:{NM_PATTERN[1]}"
    return "unstructured"


def weight_stats(name: str, value: np.ndarray, matrix: np.ndarray | None = None) -> WeightStats:
    """Counts `value`; `matrix` is its `[out, in]` view when it is a kernel."""
    value = np.asarray(value)
    return WeightStats(
        name=name,
        shape=tuple(int(d) for d in value.shape),
        dtype=str(value.dtype),
        params=int(value.size),
        nonzero=int(np.count_nonzero(value)),
        unique=int(np.unique(value).size),
        structure=None if matrix is None else describe_structure(matrix),
    )
