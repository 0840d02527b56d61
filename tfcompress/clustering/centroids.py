"""Centroid initialisation and assignment in numpy: linear, k-means++ and density-based.

Everything here runs once, when a `ClusterWeights` wrapper is built, on the
wrapped layer's current weights. Centroids come back sorted, and weights are
assigned to their nearest centroid.
"""

from __future__ import annotations

import enum

import numpy as np

SEED = 0  # k-means++ seeding is deterministic: the same weights give the same centroids
LLOYD_ITERATIONS = 10


class CentroidInitialization(str, enum.Enum):
    """How the centroids of each clustered weight start (tfmot's names).

    `LINEAR` spaces them evenly between the smallest and the largest weight.
    `KMEANS_PLUS_PLUS` seeds them with k-means++ (seeded, so reproducible) and
    refines them with a few Lloyd iterations. `DENSITY_BASED` places them at
    evenly spaced levels of the weights' cumulative distribution, so dense
    regions get more centroids. The strings `"linear"`, `"kmeans++"` and
    `"density"` name them too.

    Example:
        >>> from tfcompress.clustering import CentroidInitialization
        >>> CentroidInitialization("kmeans++") is CentroidInitialization.KMEANS_PLUS_PLUS
        True
    """

    LINEAR = "linear"
    KMEANS_PLUS_PLUS = "kmeans++"
    DENSITY_BASED = "density"


def linear_centroids(values: np.ndarray, number_of_clusters: int) -> np.ndarray:
    """`number_of_clusters` centroids evenly spaced between `min(values)` and `max(values)`.

    Example:
        >>> from tfcompress.clustering.centroids import linear_centroids
        >>> linear_centroids(np.array([-1.0, 0.5, 3.0]), 5)
        array([-1.,  0.,  1.,  2.,  3.], dtype=float32)
    """
    values = np.asarray(values, dtype="float64").ravel()
    return np.linspace(values.min(), values.max(), number_of_clusters).astype("float32")


def density_based_centroids(values: np.ndarray, number_of_clusters: int) -> np.ndarray:
    """Centroids where the cumulative distribution of `values` crosses `(i + 0.5) / k`.

    Each of the `k` centroids is the median of one `1/k` slice of the weights,
    so the centroids follow the weights' density.

    Example:
        >>> from tfcompress.clustering.centroids import density_based_centroids
        >>> density_based_centroids(np.arange(100.0), 4)
        array([12.375, 37.125, 61.875, 86.625], dtype=float32)
    """
    levels = (np.arange(number_of_clusters) + 0.5) / number_of_clusters
    return np.quantile(np.asarray(values, dtype="float64").ravel(), levels).astype("float32")


def kmeans_plus_plus_centroids(
    values: np.ndarray,
    number_of_clusters: int,
    seed: int = SEED,
    iterations: int = LLOYD_ITERATIONS,
) -> np.ndarray:
    """k-means++ seeding (each new centroid drawn with probability ~ squared distance), then Lloyd.

    Args:
        values: The weights (any shape; flattened).
        number_of_clusters: How many centroids.
        seed: Seed of the random draws.
        iterations: At most this many Lloyd iterations (assign, then move each
            centroid to the mean of its members); stops early once stable.

    Example:
        >>> from tfcompress.clustering.centroids import kmeans_plus_plus_centroids
        >>> kmeans_plus_plus_centroids(np.array([0.0, 0.1, 5.0, 5.1]), 2)
        array([0.05, 5.05], dtype=float32)
    """
    x = np.asarray(values, dtype="float64").ravel()
    rng = np.random.default_rng(seed)
    chosen = [x[rng.integers(x.size)]]
    distance = (x - chosen[0]) ** 2
    for _ in range(1, number_of_clusters):
        total = distance.sum()
        pick = rng.choice(x.size, p=distance / total) if total > 0 else rng.integers(x.size)
        chosen.append(x[pick])
        distance = np.minimum(distance, (x - x[pick]) ** 2)
    centroids = np.sort(np.array(chosen))
    for _ in range(iterations):
        members = assign_to_centroids(x, centroids)
        counts = np.bincount(members, minlength=number_of_clusters)
        sums = np.bincount(members, weights=x, minlength=number_of_clusters)
        moved = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centroids))
        if np.array_equal(moved, centroids):
            break
        centroids = moved
    return centroids.astype("float32")


INITIALIZERS = {
    CentroidInitialization.LINEAR: linear_centroids,
    CentroidInitialization.KMEANS_PLUS_PLUS: kmeans_plus_plus_centroids,
    CentroidInitialization.DENSITY_BASED: density_based_centroids,
}


def assign_to_centroids(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `centroids` for each value (int32, shape of `values`)."""
    centroids = np.asarray(centroids, dtype="float64")
    boundaries = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(boundaries, np.asarray(values, dtype="float64")).astype("int32")


def _cluster_flat(
    values: np.ndarray, number_of_clusters: int, init: CentroidInitialization, keep_zeros: bool
) -> tuple[np.ndarray, np.ndarray]:
    initialize = INITIALIZERS[init]
    if not keep_zeros:
        centroids = np.sort(initialize(values, number_of_clusters))
        return centroids, assign_to_centroids(values, centroids)
    # Centroid 0 is the zero of the pruned weights; the others cluster the non-zeros only.
    centroids = np.zeros(number_of_clusters, dtype="float32")
    indices = np.zeros(values.shape, dtype="int32")
    nonzero = values != 0
    if nonzero.any():
        centroids[1:] = np.sort(initialize(values[nonzero], number_of_clusters - 1))
        indices[nonzero] = 1 + assign_to_centroids(values[nonzero], centroids[1:])
    return centroids, indices


def cluster_array(
    values: np.ndarray,
    number_of_clusters: int,
    init: CentroidInitialization | str = CentroidInitialization.KMEANS_PLUS_PLUS,
    preserve_sparsity: bool = False,
    channel_axes: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Initial centroids of `values` and the index of each value's centroid.

    Args:
        values: A weight tensor.
        number_of_clusters: Centroids per tensor, or per channel.
        init: A `CentroidInitialization` or its string.
        preserve_sparsity: Centroid 0 is exactly 0 and holds exactly the zero
            weights; the other `k - 1` centroids cluster the non-zero weights.
        channel_axes: None clusters the whole tensor with one set of centroids;
            otherwise each channel (one index along these axes, in ascending
            order) gets its own `number_of_clusters` centroids.

    Returns:
        `(centroids, indices)`: centroids float32 of shape `[k]`, or
        `[channels, k]` with channels numbered row-major over `channel_axes`;
        indices int32 of the shape of `values`, in `[0, k)`.

    Example:
        >>> from tfcompress.clustering.centroids import cluster_array
        >>> centroids, indices = cluster_array(np.array([[0.0, 1.0], [0.1, 0.9]]), 2, "linear")
        >>> centroids[indices]
        array([[0., 1.],
               [0., 1.]], dtype=float32)
    """
    values = np.asarray(values)
    init = CentroidInitialization(init)
    if channel_axes is None:
        centroids, indices = _cluster_flat(
            values.ravel(), number_of_clusters, init, preserve_sparsity
        )
        return centroids, indices.reshape(values.shape)
    front = tuple(range(len(channel_axes)))
    moved = np.moveaxis(values, channel_axes, front)
    channels = int(np.prod(moved.shape[: len(front)]))
    rows = [
        _cluster_flat(row, number_of_clusters, init, preserve_sparsity)
        for row in moved.reshape(channels, -1)
    ]
    centroids = np.stack([c for c, _ in rows])
    indices = np.stack([i for _, i in rows]).reshape(moved.shape)
    return centroids, np.moveaxis(indices, front, channel_axes)
