"""Counts of one weight tensor."""

import numpy as np
import pytest

from tfcompress.reporting.weights import weight_stats


def test_weight_stats_counts():
    value = np.array([[0.0, 1.0], [1.0, 2.5]], dtype=np.float32)
    stats = weight_stats("w", value, value)
    assert (stats.params, stats.nonzero, stats.unique) == (4, 3, 3)
    assert stats.sparsity == pytest.approx(0.25)
    assert stats.to_dict()["shape"] == [2, 2]
