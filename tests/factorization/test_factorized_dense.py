"""FactorizedDense: parity with Dense, Eckart-Young error, serialization, bad input."""

import keras
import numpy as np
import pytest

from tfcompress.factorization import FactorizedDense


def _dense(fan_in=24, units=16, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = keras.layers.Dense(units, name="fc", **kwargs)
    layer.build((None, fan_in))
    if layer.use_bias:  # fresh biases are zero: make them count
        layer.bias.assign(np.random.default_rng(seed).normal(size=units).astype("float32"))
    return layer


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
def test_full_rank_reproduces_the_dense_layer(activation, rng):
    dense = _dense(activation=activation)
    factorized = FactorizedDense.from_dense(dense, rank=16)
    x = rng.normal(size=(32, 24)).astype("float32")
    expected = keras.ops.convert_to_numpy(dense(x))
    np.testing.assert_allclose(factorized(x), expected, rtol=1e-5, atol=1e-5)
    assert factorized.name == "fc"
    assert factorized.get_config()["activation"] == dense.get_config()["activation"]


def test_higher_rank_inputs_use_the_last_axis(rng):
    dense = keras.layers.Dense(6, name="proj")
    dense(np.zeros((1, 5, 8), "float32"))
    factorized = FactorizedDense.from_dense(dense, rank=6)
    x = rng.normal(size=(3, 5, 8)).astype("float32")
    np.testing.assert_allclose(factorized(x), dense(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 4, 11])
def test_reduced_rank_error_is_the_discarded_singular_value_energy(rank):
    dense = _dense(fan_in=40, units=24, use_bias=False)
    factorized = FactorizedDense.from_dense(dense, rank=rank, svd="full")
    kernel = keras.ops.convert_to_numpy(dense.kernel).astype(np.float64)
    s = np.linalg.svd(kernel, compute_uv=False)
    applied = keras.ops.convert_to_numpy(factorized(np.eye(40, dtype="float32")))  # rows: x = e_i
    error = kernel - applied.astype(np.float64)
    np.testing.assert_allclose((error**2).sum(), (s[rank:] ** 2).sum(), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(error, 2), s[rank], rtol=1e-4)  # spectral norm
    np.testing.assert_allclose(applied, factorized.effective_kernel(), atol=1e-6)


def test_energy_picks_the_smallest_rank_holding_it():
    dense = _dense(fan_in=40, units=24)
    s = np.linalg.svd(keras.ops.convert_to_numpy(dense.kernel), compute_uv=False)
    kept = np.cumsum(s**2) / (s**2).sum()
    for energy in (0.3, 0.75, 0.99, 1.0):
        rank = FactorizedDense.from_dense(dense, energy=energy).rank
        assert kept[rank - 1] >= energy - 1e-6 and (rank == 1 or kept[rank - 2] < energy)


def test_to_layers_compute_the_same_in_sequence(rng):
    factorized = FactorizedDense.from_dense(_dense(activation="relu"), rank=5)
    parts = factorized.to_layers()
    assert [type(p).__name__ for p in parts] == ["Dense", "Dense"]
    assert [p.kernel.shape for p in parts] == [(24, 5), (5, 16)] and parts[0].bias is None
    x = rng.normal(size=(8, 24)).astype("float32")
    np.testing.assert_allclose(parts[1](parts[0](x)), factorized(x), rtol=1e-6, atol=1e-6)


def test_config_and_keras_file_round_trip(reload, rng):
    layer = FactorizedDense(
        7, rank=3, activation="relu", use_bias=False, kernel_regularizer="l2", name="low"
    )
    config = layer.get_config()
    assert FactorizedDense.from_config(config).get_config() == config
    inputs = keras.Input((10,))
    model = keras.Model(inputs, layer(inputs))
    loaded = reload(model)
    assert isinstance(loaded.get_layer("low"), FactorizedDense)
    x = rng.normal(size=(4, 10)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_trains(rng):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), FactorizedDense(4, rank=2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = rng.normal(size=(64, 12)), rng.normal(size=(64, 4))
    before = [w.numpy().copy() for w in model.weights]
    history = model.fit(x, y, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, model.weights))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 8, "rank": 0}, r"`rank` must be a positive integer. Received: rank=0"),
        ({"units": 8, "rank": 2.5}, r"Received: rank=2.5"),
        ({"units": 0, "rank": 1}, r"`units` must be a positive integer. Received: units=0"),
        ({"units": 8, "rank": 9}, r"'bad': `rank` must be at most .* Received: rank=9"),
    ],
)
def test_bad_arguments_name_layer_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FactorizedDense(**kwargs, name="bad")


def test_rank_above_the_input_features_fails_at_build():
    with pytest.raises(ValueError, match=r"'bad': `rank` must be at most .* = 4. Received: rank=6"):
        FactorizedDense(8, rank=6, name="bad")(np.zeros((1, 4)))


def test_from_dense_refuses_bad_input():
    dense = _dense(fan_in=10, units=6)
    with pytest.raises(ValueError, match=r"layer 'fc'.* `rank` must be at most .* = 6"):
        FactorizedDense.from_dense(dense, rank=7)
    with pytest.raises(ValueError, match="exactly one of `rank`"):
        FactorizedDense.from_dense(dense, rank=2, energy=0.5)
    with pytest.raises(ValueError, match="exactly one of `rank`"):
        FactorizedDense.from_dense(dense)
    with pytest.raises(ValueError, match=r"layer 'fc'.*`energy` must be .*Received: energy=1.2"):
        FactorizedDense.from_dense(dense, energy=1.2)
    with pytest.raises(ValueError, match=r"not a Dense layer"):
        FactorizedDense.from_dense(keras.layers.Conv2D(3, 3), rank=1)
    with pytest.raises(ValueError, match="not built"):
        FactorizedDense.from_dense(keras.layers.Dense(3), rank=1)
