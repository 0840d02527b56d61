"""Subclassed models written the usual way (no `get_config`, `__init__` without arguments)."""

import keras
import numpy as np
import pytest

import tfcompress as tc


class NoArguments(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(32, activation="relu")
        self.logits = keras.layers.Dense(10)

    def call(self, x):
        return self.logits(self.hidden(x))


class OnlyKwargs(NoArguments):
    def __init__(self, **kwargs):
        super().__init__()


class NeedsWidth(keras.Model):
    def __init__(self, width):
        super().__init__()
        self.dense = keras.layers.Dense(width)

    def call(self, x):
        return self.dense(x)


@pytest.fixture
def x():
    return np.random.default_rng(0).random((8, 20)).astype("float32")


@pytest.mark.parametrize("cls", [NoArguments, OnlyKwargs])
def test_prune_quantize_and_cluster_accept_it(cls, x):
    keras.utils.set_random_seed(0)
    model = cls()
    model(x)
    pruned = tc.prune_low_magnitude(model)
    np.testing.assert_array_equal(pruned(x), model(x))  # masks start all ones
    np.testing.assert_array_equal(tc.strip_pruning(pruned)(x), model(x))
    qat = tc.quantize_model(model)
    np.testing.assert_allclose(qat(x), model(x), atol=0.1)
    clustered = tc.cluster_weights(model, number_of_clusters=8)
    assert len(np.unique(tc.strip_clustering(clustered).hidden.kernel.numpy())) <= 8


def test_required_arguments_without_a_config_still_get_the_clear_error(x):
    model = NeedsWidth(4)
    model(x)
    with pytest.raises(ValueError, match=r"cannot be re-created from its `get_config\(\)`"):
        tc.prune_low_magnitude(model)
