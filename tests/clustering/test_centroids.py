"""Centroid initialisation and assignment on known arrays (numpy only)."""

import numpy as np
import pytest

from tfcompress.clustering.centroids import (
    CentroidInitialization,
    assign_to_centroids,
    cluster_array,
    density_based_centroids,
    kmeans_plus_plus_centroids,
    linear_centroids,
)

rng = np.random.default_rng(0)


def test_linear_spaces_evenly_between_min_and_max():
    values = np.array([3.0, -1.0, 0.2, 2.5, 1.0])
    np.testing.assert_array_equal(linear_centroids(values, 5), [-1.0, 0.0, 1.0, 2.0, 3.0])


def test_kmeans_plus_plus_finds_well_separated_clusters():
    means = np.array([-5.0, 0.0, 7.0])
    values = np.concatenate([m + rng.normal(0, 0.1, 300) for m in means])
    rng.shuffle(values)
    centroids = kmeans_plus_plus_centroids(values, 3)
    np.testing.assert_allclose(centroids, means, atol=0.03)
    np.testing.assert_array_equal(centroids, kmeans_plus_plus_centroids(values, 3))  # seeded


def test_kmeans_plus_plus_with_fewer_distinct_values_than_clusters():
    values = np.array([1.0, 1.0, 2.0, 2.0, 5.0])
    centroids = kmeans_plus_plus_centroids(values, 4)
    np.testing.assert_array_equal(centroids[assign_to_centroids(values, centroids)], values)


def test_density_based_follows_the_cumulative_distribution():
    values = rng.exponential(1.0, 20_000)
    centroids = density_based_centroids(values, 8)
    cdf = [(values <= c).mean() for c in centroids]
    np.testing.assert_allclose(cdf, (np.arange(8) + 0.5) / 8, atol=1e-3)
    # Dense near zero: more centroids there than evenly spaced ones put.
    assert (centroids < 1).sum() > (linear_centroids(values, 8) < 1).sum()


def test_assignment_is_to_the_nearest_centroid():
    values = rng.normal(0, 1, 1000)
    centroids = np.sort(rng.normal(0, 1, 7))
    nearest = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(assign_to_centroids(values, centroids), nearest)


@pytest.mark.parametrize("init", list(CentroidInitialization))
@pytest.mark.parametrize("axes", [None, (3,), (2, 3)])
def test_cluster_array_per_tensor_and_per_channel(init, axes):
    kernel = rng.normal(0, 1, (3, 3, 4, 6)).astype("float32")
    centroids, indices = cluster_array(kernel, 5, init, channel_axes=axes)
    assert indices.shape == kernel.shape and indices.dtype == np.int32
    assert indices.min() >= 0 and indices.max() < 5
    if axes is None:
        assert centroids.shape == (5,)
        candidates = np.broadcast_to(centroids, (*kernel.shape, 5))
    else:
        channels = int(np.prod([kernel.shape[a] for a in axes]))
        assert centroids.shape == (channels, 5)
        view = [kernel.shape[a] if a in axes else 1 for a in range(4)]
        candidates = centroids[np.arange(channels).reshape(view)]
    values = np.take_along_axis(candidates, indices[..., None], axis=-1)[..., 0]
    if axes is not None:
        rows = np.moveaxis(values, axes, range(len(axes))).reshape(channels, -1)
        assert max(len(np.unique(row)) for row in rows) <= 5
    nearest = np.abs(candidates - kernel[..., None]).min(axis=-1)
    np.testing.assert_allclose(np.abs(values - kernel), nearest, atol=1e-6)


def test_preserve_sparsity_keeps_zeros_on_the_zero_centroid():
    kernel = rng.normal(0, 1, (16, 8)).astype("float32")
    kernel[rng.random(kernel.shape) < 0.6] = 0.0
    for axes in (None, (1,)):
        centroids, indices = cluster_array(kernel, 4, "density", True, axes)
        assert np.all(centroids[..., 0] == 0)
        np.testing.assert_array_equal(indices == 0, kernel == 0)


def test_unknown_string_is_refused():
    with pytest.raises(ValueError, match="'kmeans'"):
        CentroidInitialization("kmeans")
