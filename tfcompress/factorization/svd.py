"""Truncated SVD of weight matrices: LAPACK's SVD, or a randomized SVD for large ones.

`randomized_svd` follows Halko, Martinsson and Tropp (2011), "Finding structure
with randomness": a Gaussian sketch of the range, power iterations
re-orthonormalised by QR, then the SVD of the small projected matrix. Its cost
grows with `rank` rather than with `min(m, n)`, so it wins when a few
components of a large matrix are wanted. `truncated_svd(method="auto")`
picks it when `(rank + OVERSAMPLES) * (2 * POWER_ITERATIONS + 2) <= min(m, n)`,
i.e. when the passes over the matrix touch fewer columns than LAPACK's
bidiagonalisation does. Measured on 2 cores (`benchmarks/factorization.py`,
float64): see `benchmarks/results/factorization.md` for the speed-ups on the
small CNN's 9216x128 kernel (too narrow: "auto" keeps LAPACK there) and on a
4096x4096 matrix.

All arithmetic is in float64; callers cast the factors to the weights' dtype.
"""

from __future__ import annotations

import numbers

import numpy as np

OVERSAMPLES = 10
POWER_ITERATIONS = 4
METHODS = ("auto", "full", "randomized")

SVD = tuple[np.ndarray, np.ndarray, np.ndarray]


def check_energy(energy, where: str = "") -> float:
    """`energy` as a float, or a ValueError when it is not in (0, 1]."""
    if isinstance(energy, bool) or not isinstance(energy, numbers.Real) or not 0 < energy <= 1:
        raise ValueError(
            f"{where}`energy` must be a number in (0, 1]: the fraction of the squared singular "
            f"values to keep. Received: energy={energy!r}"
        )
    return float(energy)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"`svd` must be one of {METHODS}. Received: svd={method!r}")
    return method


def singular_values(matrix: np.ndarray) -> np.ndarray:
    """All singular values of `matrix`, largest first (LAPACK, no singular vectors)."""
    return np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)


def energy_rank(values: np.ndarray, energy: float) -> int:
    """The smallest rank whose singular values hold `energy` of the squared total.

    Example:
        >>> from tfcompress.factorization import energy_rank
        >>> energy_rank(np.array([3.0, 1.0, 0.0]), 0.9)
        1
    """
    energy = check_energy(energy)
    squares = np.asarray(values, dtype=np.float64) ** 2
    kept = np.cumsum(squares) / max(squares.sum(), np.finfo(np.float64).tiny)
    # 1e-12 absorbs the rounding of the cumulative sum, so energy=1 keeps every nonzero value.
    return int(np.searchsorted(kept, energy - 1e-12) + 1)


def prefers_randomized(shape: tuple[int, int], rank: int) -> bool:
    """True when the randomized SVD is expected to be faster (see the module docstring)."""
    return (rank + OVERSAMPLES) * (2 * POWER_ITERATIONS + 2) <= 2 * min(shape)


def randomized_svd(
    matrix: np.ndarray,
    rank: int,
    oversamples: int = OVERSAMPLES,
    power_iterations: int = POWER_ITERATIONS,
    seed: int = 0,
) -> SVD:
    """The leading `rank` singular triplets of `matrix`, approximately.

    Args:
        matrix: A 2-D array `[m, n]`.
        rank: How many singular triplets to return.
        oversamples: Extra sketch columns beyond `rank`; they make the
            leading `rank` directions accurate.
        power_iterations: Passes of `(A A^T)` applied to the sketch, each
            followed by a QR; they sharpen slowly decaying spectra.
        seed: Seed of the Gaussian sketch.

    Returns:
        `(u [m, rank], s [rank], vt [rank, n])`, `s` descending.

    Example:
        >>> from tfcompress.factorization import randomized_svd
        >>> a = np.random.default_rng(0).normal(size=(500, 40)) @ np.diag(0.5 ** np.arange(40))
        >>> u, s, vt = randomized_svd(a, 5)
        >>> np.allclose(s, np.linalg.svd(a, compute_uv=False)[:5])
        True
    """
    a = np.asarray(matrix, dtype=np.float64)
    sketch = min(rank + oversamples, min(a.shape))
    omega = np.random.default_rng(seed).standard_normal((a.shape[1], sketch))
    q, _ = np.linalg.qr(a @ omega)
    for _ in range(power_iterations):
        z, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ z)
    u_small, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    return (q @ u_small)[:, :rank], s[:rank], vt[:rank]


def truncated_svd(matrix: np.ndarray, rank: int, method: str = "auto", seed: int = 0) -> SVD:
    """The leading `rank` singular triplets of `matrix`.

    Args:
        matrix: A 2-D array.
        rank: How many singular triplets to keep, 1 to `min(matrix.shape)`.
        method: `"full"` (LAPACK, exact), `"randomized"` (`randomized_svd`) or
            `"auto"` (randomized when `prefers_randomized` says it is faster).
        seed: Seed of the randomized sketch.

    Returns:
        `(u [m, rank], s [rank], vt [rank, n])` in float64.
    """
    check_method(method)
    if method == "randomized" or (method == "auto" and prefers_randomized(matrix.shape, rank)):
        return randomized_svd(matrix, rank, seed=seed)
    u, s, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64), full_matrices=False)
    return u[:, :rank], s[:rank], vt[:rank]


def balanced_factors(matrix: np.ndarray, rank: int, method: str = "auto", seed: int = 0):
    """`(a [m, rank], b [rank, n])` with `a @ b` the best rank-`rank` approximation of `matrix`.

    Each side carries the square root of the singular values, so both factors
    have the same scale (which suits per-tensor int8 quantization and training).
    """
    u, s, vt = truncated_svd(matrix, rank, method, seed)
    root = np.sqrt(s)
    return u * root, root[:, None] * vt
