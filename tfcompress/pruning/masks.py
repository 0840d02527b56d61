"""Mask computation: unstructured, 16x4-block and N:M, per layer or with one global threshold.

Every weight is viewed as an `[out, in]` matrix (`tfcompress.core.to_matrix`: a
Dense `[in, out]` kernel becomes TFLite's FULLY_CONNECTED `[out, in]`, a Conv2D
`[kh, kw, in, out]` kernel `[out, kh * kw * in]`). Blocks of `(rows, cols)` tile
that matrix (`tfcompress.core.tiles`): `rows` output channels by `cols` inputs;
the last row of tiles may be partial when `rows` does not divide the outputs.
"""

from __future__ import annotations

import numpy as np

from tfcompress.core.blocks import expand_tiles, tiles
from tfcompress.core.weights import from_matrix, matrix_shape, to_matrix

POOLING = ("AVG", "MAX")
CHANNEL_NORMS = ("L1", "L2")


def structure_problem(
    shape: tuple, block_size: tuple[int, int], sparsity_m_by_n: tuple[int, int] | None
) -> str | None:
    """Why the block or N:M pattern does not fit a weight of `shape`; None when it fits.

    A block must fit in both dimensions and divide the input dimension; the
    output dimension may end in a partial tile (the int8 kernel pads rows), so
    LeNet's 300 outputs take 16-row tiles.
    """
    rows, cols = matrix_shape(shape)
    layout = f"the weight {tuple(shape)} as [out, in] is [{rows}, {cols}]"
    for axis, size, block in (("output", rows, block_size[0]), ("input", cols, block_size[1])):
        if block > size:
            return (
                f"block_size={tuple(block_size)} does not fit the weight's {axis} "
                f"dimension ({size}; {layout})"
            )
    if cols % block_size[1]:
        return (
            f"block_size={tuple(block_size)} does not divide the weight's input "
            f"dimension ({cols}; {layout})"
        )
    if sparsity_m_by_n is not None and cols % sparsity_m_by_n[1]:
        return (
            f"sparsity_m_by_n={tuple(sparsity_m_by_n)} needs an input dimension "
            f"divisible by {sparsity_m_by_n[1]}; {layout}"
        )
    return None


def check_structure(
    shape: tuple, block_size: tuple[int, int], sparsity_m_by_n: tuple[int, int] | None, where: str
) -> None:
    """Raises when the block or N:M pattern does not fit a weight of `shape` (see
    `structure_problem`)."""
    problem = structure_problem(shape, block_size, sparsity_m_by_n)
    if problem is not None:
        raise ValueError(
            f"{where}: {problem}. Skip this layer or pick a block (or N:M pattern) that fits it."
        )


def block_scores(
    scores: np.ndarray, block_size: tuple[int, int], pooling: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pools an `[out, in]` score matrix over `block_size` tiles (AVG or MAX).

    Returns the pooled scores and each tile's number of real elements (edge
    tiles may be partial).
    """
    tiled = tiles(scores, block_size)
    sizes = tiles(np.ones_like(scores), block_size).sum(axis=(1, 3))
    pooled = tiled.sum(axis=(1, 3)) / sizes if pooling == "AVG" else tiled.max(axis=(1, 3))
    return pooled, sizes


def _keep_largest(
    pooled: list[np.ndarray], sizes: list[np.ndarray], sparsity: float
) -> list[np.ndarray]:
    """Zeroes the lowest-scoring tiles across all arrays until `sparsity` of the elements are."""
    flat = np.concatenate([p.ravel() for p in pooled])
    flat_sizes = np.concatenate([s.ravel() for s in sizes])
    target = int(round(sparsity * flat_sizes.sum()))
    order = np.argsort(flat, kind="stable")
    n_zero = int(np.searchsorted(np.cumsum(flat_sizes[order]), target, side="right"))
    keep = np.ones(flat.size, dtype=np.float32)
    keep[order[:n_zero]] = 0.0
    out, start = [], 0
    for p in pooled:
        out.append(keep[start : start + p.size].reshape(p.shape))
        start += p.size
    return out


def n_m_mask(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keeps the `n` highest scores in every `m` consecutive inputs of each row."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // m, m)
    order = np.argsort(-groups, axis=-1, kind="stable")
    mask = np.zeros_like(groups, dtype=np.float32)
    np.put_along_axis(mask, order[..., :n], 1.0, axis=-1)
    return mask.reshape(rows, cols)


def compute_masks(
    scores: list[np.ndarray],
    sparsity: float,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
) -> list[np.ndarray]:
    """Masks (1 keep, 0 prune) for weights whose importance scores are given.

    With one score array this is per-layer pruning; with several, one threshold
    is shared by all of them (global pruning): the lowest-scoring blocks across
    the set are pruned until `sparsity` of all their elements are zero.

    Args:
        scores: Importance of each weight element (e.g. `|w|`), one array per
            weight, each in the weight's own shape.
        sparsity: Fraction of elements to zero, in [0, 1). Ignored with N:M,
            whose sparsity is `1 - n / m`.
        block_size: `(out, in)` tile pruned as a whole.
        block_pooling_type: How a tile's score is pooled from its elements.
        sparsity_m_by_n: `(n, m)`: keep `n` of every `m` consecutive inputs.

    Returns:
        One float32 mask per weight, in the weight's shape.
    """
    matrices = [to_matrix(s) for s in scores]
    if sparsity_m_by_n is not None:
        n, m = sparsity_m_by_n
        masks = [n_m_mask(s, n, m) for s in matrices]
    else:
        pooled, sizes = zip(*(block_scores(s, block_size, block_pooling_type) for s in matrices))
        kept = _keep_largest(list(pooled), list(sizes), sparsity)
        masks = [expand_tiles(b, block_size, s.shape) for b, s in zip(kept, matrices)]
    return [from_matrix(mask, s.shape) for mask, s in zip(masks, scores)]


def channel_masks(scores: list[np.ndarray], sparsity: float, norm: str) -> list[np.ndarray]:
    """Masks that prune whole output channels (filters, units) of the lowest norm.

    Each channel's score is the L1 norm (mean of `|w|`) or L2 norm (root mean
    square) of its weights over its fan-in, so channels of layers with
    different fan-ins compare fairly under one global threshold. With one
    weight this is plain L1/L2 ranking. `sparsity` counts weight elements.
    """
    matrices = [to_matrix(np.abs(s)) for s in scores]
    if norm == "L1":
        rows = [m.mean(axis=1, keepdims=True) for m in matrices]
    else:
        rows = [np.sqrt((m**2).mean(axis=1, keepdims=True)) for m in matrices]
    sizes = [np.full_like(r, m.shape[1]) for r, m in zip(rows, matrices)]
    kept = _keep_largest(rows, sizes, sparsity)
    return [
        from_matrix(np.repeat(k, m.shape[1], axis=1), s.shape)
        for k, m, s in zip(kept, matrices, scores)
    ]
