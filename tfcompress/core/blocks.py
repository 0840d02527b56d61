"""The block geometry of our int8 kernels, and detection of block and N:M sparsity structure.

Everything here works on a weight's `[out, in]` matrix (see `tfcompress.core.weights`):
rows are output channels, columns inputs. Blocks of `(rows, cols)` tile that
matrix; the last row and column of tiles may be partial. The C++ kernels keep the
same numbers in `kernels/src/constants.h`; a test checks that the two agree.
"""

from __future__ import annotations

import numpy as np

BLOCK_SHAPE = (16, 4)  # (output channels, inputs): the block of our int8 kernel
NM_PATTERN = (2, 4)  # at most N non-zeros in every M consecutive inputs
# kernel="auto" runs a layer block-sparse when at most this fraction of its blocks is non-zero.
SPARSE_MAX_DENSITY = 0.7


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


def block_density(matrix: np.ndarray, block: tuple[int, int] = BLOCK_SHAPE) -> float:
    """Fraction of `block`-shaped tiles of `matrix` holding a non-zero (as the kernels count)."""
    return float(_live_tiles(matrix, block).mean())


def zero_block_fraction(matrix: np.ndarray, block: tuple[int, int] = BLOCK_SHAPE) -> float:
    """Fraction of `block`-shaped tiles of `matrix` that are all zero."""
    return 1.0 - block_density(matrix, block)


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
