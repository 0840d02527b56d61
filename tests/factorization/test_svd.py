"""Truncated and randomized SVD against numpy's SVD; energy ranks."""

import numpy as np
import pytest

from tfcompress.factorization.svd import (
    balanced_factors,
    energy_rank,
    prefers_randomized,
    randomized_svd,
    truncated_svd,
)


def _matrix(m, n, decay, seed=0):
    """A random `[m, n]` matrix with singular values `decay ** i`."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(m, n)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (u * decay ** np.arange(n)) @ v.T


@pytest.mark.parametrize(
    ("values", "energy", "rank"),
    [
        ([3.0, 1.0, 0.0], 0.9, 1),
        ([3.0, 1.0, 0.0], 0.95, 2),
        ([3.0, 1.0, 0.0], 1.0, 2),
        ([1.0, 1.0, 1.0, 1.0], 0.5, 2),
        ([1.0, 1.0, 1.0, 1.0], 0.51, 3),
        ([2.0], 1e-9, 1),
    ],
)
def test_energy_rank_is_the_smallest_rank_holding_the_energy(values, energy, rank):
    assert energy_rank(np.array(values), energy) == rank


@pytest.mark.parametrize("energy", [0, -0.1, 1.5, True, "0.9", None])
def test_energy_out_of_range_is_refused(energy):
    with pytest.raises(ValueError, match=r"`energy` must be a number in \(0, 1\]"):
        energy_rank(np.ones(3), energy)


def test_full_method_is_numpys_truncated_svd():
    a = np.random.default_rng(1).normal(size=(40, 25))
    u, s, vt = truncated_svd(a, 7, method="full")
    u_np, s_np, vt_np = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(s, s_np[:7], rtol=1e-12)
    np.testing.assert_allclose(
        u @ np.diag(s) @ vt, (u_np[:, :7] * s_np[:7]) @ vt_np[:7], atol=1e-12
    )


def test_randomized_svd_recovers_a_decaying_spectrum():
    a = _matrix(600, 200, decay=0.8)
    u, s, vt = randomized_svd(a, 10, seed=3)
    exact = np.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(s, exact[:10], rtol=1e-9)
    np.testing.assert_allclose(u.T @ u, np.eye(10), atol=1e-10)  # orthonormal columns
    np.testing.assert_allclose(vt @ vt.T, np.eye(10), atol=1e-10)


def test_randomized_svd_is_near_optimal_on_a_flat_spectrum():
    """With a slowly decaying spectrum the power iterations keep the error near Eckart-Young's."""
    a = _matrix(800, 300, decay=0.995)
    rank = 20
    u, s, vt = randomized_svd(a, rank)
    exact = np.linalg.svd(a, compute_uv=False)
    optimal = np.sqrt((exact[rank:] ** 2).sum())
    error = np.linalg.norm(a - (u * s) @ vt)
    assert optimal <= error <= 1.01 * optimal


def test_auto_picks_randomized_only_where_it_pays():
    assert not prefers_randomized((9216, 128), 16)  # narrow: LAPACK is cheap
    assert prefers_randomized((4096, 4096), 64)
    assert not prefers_randomized((4096, 4096), 1000)
    a = _matrix(600, 300, decay=0.9)
    np.testing.assert_allclose(
        truncated_svd(a, 5)[1], truncated_svd(a, 5, method="full")[1], rtol=1e-9
    )


def test_balanced_factors_split_the_singular_values_evenly():
    a = _matrix(50, 30, decay=0.9)
    left, right = balanced_factors(a, 6, method="full")
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(left @ right, (u[:, :6] * s[:6]) @ vt[:6], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(left, axis=0), np.linalg.norm(right, axis=1))


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="`svd` must be one of"):
        truncated_svd(np.ones((3, 3)), 1, method="lanczos")
