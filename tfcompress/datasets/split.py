"""A seeded, stratified train/test split shared by the dataset loaders."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """A train/test split of images `x` (float32 in [0, 1]) and integer labels `y`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Split:
    """Splits `(x, y)` so every class keeps its share in both parts.

    Within each class the samples are shuffled with `seed` and the first
    `round(n_class * test_fraction)` go to the test set; both parts are then
    shuffled with the same seed, so the order is fixed too.

    Args:
        x: Samples, first axis indexes them.
        y: Integer labels, one per sample.
        test_fraction: Fraction of each class that goes to the test set, in (0, 1).
        seed: Seed of the shuffles.

    Returns:
        A `Split`.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"`test_fraction` must be in (0, 1). Received: test_fraction={test_fraction}"
        )
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` differ in length. Received: {len(x)} and {len(y)} samples")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return Split(x[train], y[train], x[test], y[test])


def missing_extra(package: str, loader: str) -> ImportError:
    """The error raised when a dataset's host package is not installed."""
    return ImportError(
        f"{loader}() needs the `{package}` package, which ships the data. "
        "Install the test extra: pip install 'tfcompress[test]' "
        f"(or pip install {package})."
    )
