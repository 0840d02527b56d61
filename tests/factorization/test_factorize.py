"""`factorize`: model-level parity with numpy's truncated SVD, rank selection, bad input."""

import warnings

import keras
import numpy as np
import pytest
from helpers import randomize_biases

import tfcompress as tc
from tfcompress.factorization import (
    FactorizedConv2D,
    FactorizedDense,
    factorization_summary,
    factorize,
)
from tfcompress.factorization.decompose import spatial_matrix

L = keras.layers


def _body(x):
    x = L.Conv2D(8, 3, activation="relu", name="c1")(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="c2")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, activation="relu", name="d1")(x)
    return L.Dense(4, name="d2")(x)


def _functional(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, _body(inputs), name="net")


def _sequential(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(8, 3, name="c1"),
            L.Flatten(name="flatten"),
            L.Dense(32, name="d1"),
        ]
    )


def _nested(seed=0):
    keras.utils.set_random_seed(seed)
    inner = _sequential(seed)
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, L.Dense(5, name="head")(inner(inputs)), name="outer")


def _truncated(matrix, rank):
    u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def _reference(model, ranks):
    """`model` with each named kernel replaced by numpy's rank-r approximation (spatial for
    convolutions)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for name, rank in ranks.items():
        kernel = keras.ops.convert_to_numpy(clone.get_layer(name).kernel)
        if kernel.ndim == 2:
            clone.get_layer(name).kernel.assign(_truncated(kernel, rank))
        else:
            kh, kw, cin, cout = kernel.shape
            low = _truncated(spatial_matrix(kernel), rank).reshape(kh, cin, kw, cout)
            clone.get_layer(name).kernel.assign(np.transpose(low, (0, 2, 1, 3)))
    return clone


@pytest.mark.parametrize("build", [_functional, _sequential])
def test_factorized_model_computes_the_truncated_svd_kernels(build, rng):
    model = build()
    ranks = {"c1": 2, "d1": 5} if build is _sequential else {"c2": 6, "d1": 5}
    factorized = factorize(model, rank=ranks, svd="full")
    assert type(factorized) is type(model)
    for name, rank in ranks.items():
        layer = factorized.get_layer(name)
        assert isinstance(layer, (FactorizedDense, FactorizedConv2D)) and layer.rank == rank
    assert isinstance(factorized.get_layer("flatten"), L.Flatten)
    x = rng.normal(size=(16, 8, 8, 3)).astype("float32")
    expected = _reference(model, ranks).predict(x, verbose=0)
    np.testing.assert_allclose(factorized.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    original = model.get_layer("d1")  # the original model is untouched
    assert isinstance(original, L.Dense) and original in model.layers


def test_nested_models_are_factorized_inside(rng, reload):
    model = _nested()
    factorized = factorize(model, rank=3, layers=["d1", "head"], svd="full")
    inner = factorized.layers[1]
    assert isinstance(inner.get_layer("d1"), FactorizedDense)
    assert isinstance(factorized.get_layer("head"), FactorizedDense)
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    loaded = reload(factorized)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), factorized.predict(x, verbose=0))


def test_fixed_rank_leaves_alone_what_would_not_be_smaller():
    model = _functional()
    factorized = factorize(model, rank=8)
    kinds = {layer.name: type(layer).__name__ for layer in factorized.layers}
    # c1: 8 * (3*3 + 3*8) = 264 weights > 216; d2: rank 8 > min(32, 4).
    assert kinds["c1"] == "Conv2D" and kinds["d2"] == "Dense"
    assert kinds["c2"] == "FactorizedConv2D" and kinds["d1"] == "FactorizedDense"
    with pytest.warns(UserWarning, match="Layer 'c1' is left as it is"):
        factorize(model, rank=8, layers=["c1"])
    for selection in ("d1", (name for name in ["d1"])):  # one name, any iterable
        only = factorize(model, rank=2, layers=selection)
        assert [type(layer).__name__ for layer in only.layers[1:]] == [
            "Conv2D",
            "Conv2D",
            "Flatten",
            "FactorizedDense",
            "Dense",
        ]


def test_energy_gives_each_layer_its_own_rank():
    model = _functional()
    factorized = factorize(model, energy=0.6, layers=[L.Dense], conv_scheme="channel")
    kernel = keras.ops.convert_to_numpy(model.get_layer("d1").kernel)
    s = np.linalg.svd(kernel, compute_uv=False)
    expected = int(np.searchsorted(np.cumsum(s**2) / (s**2).sum(), 0.6) + 1)
    assert factorized.get_layer("d1").rank == expected
    assert isinstance(factorized.get_layer("c2"), L.Conv2D)  # not selected
    per_layer = factorize(model, energy={"c2": 0.9, "d1": 0.5}, conv_scheme="channel")
    assert per_layer.get_layer("c2").scheme == "channel"
    assert per_layer.get_layer("d1").rank < expected


@pytest.mark.parametrize("budget", ["params", "macs"])
def test_compression_keeps_the_budget(budget):
    model = _functional()
    factorized = factorize(model, compression=0.3, budget=budget)
    key = "params" if budget == "params" else "macs"
    summary = factorization_summary(model, factorized)
    before = sum(r.params if key == "params" else r.macs for r in tc.report(model).layers)
    after = sum(r.params if key == "params" else r.macs for r in tc.report(factorized).layers)
    assert summary.rows and after <= 0.3 * before + 100  # + biases, which are not in the budget
    assert after >= 0.2 * before  # the greedy fills the budget


def test_compression_prefers_the_layer_with_the_most_energy_per_parameter():
    model = _functional()
    d1 = model.get_layer("d1")
    kernel = keras.ops.convert_to_numpy(d1.kernel)
    d1.kernel.assign(_truncated(kernel, 2) + 1e-4 * kernel)  # nearly rank 2: cheap to keep
    factorized = factorize(model, compression=0.1, layers=["c2", "d1"])
    # Budget 0.1 * (1,152 + 18,432): d1's two ranks (2 * 608) and the rest to c2 (72 per rank).
    assert factorized.get_layer("d1").rank == 2
    assert factorized.get_layer("c2").rank == (1958 - 2 * 608) // 72


def test_variable_input_sizes(rng):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = L.GlobalAveragePooling2D()(L.Conv2D(16, 3, name="conv")(inputs))
    model = keras.Model(inputs, L.Dense(8, name="fc")(L.Dense(12, name="hidden")(x)))
    factorized = factorize(model, rank=2, svd="full")
    assert [type(factorized.get_layer(n)).__name__ for n in ("conv", "hidden", "fc")] == [
        "FactorizedConv2D",
        "FactorizedDense",
        "FactorizedDense",
    ]
    assert factorized.predict(rng.normal(size=(2, 9, 7, 3)), verbose=0).shape == (2, 8)
    factorize(model, compression=0.5)
    with pytest.raises(ValueError, match=r"budget='macs' needs fixed input sizes; layer 'conv'"):
        factorize(model, compression=0.5, budget="macs")


def test_summary_lists_ranks_params_and_macs():
    model = _functional()
    factorized = factorize(model, rank={"c2": 4, "d1": 3}, svd="full")
    summary = factorization_summary(model, factorized)
    rows = {r["layer"]: r for r in summary.rows}
    assert rows["d1"]["rank"] == "3" and rows["d1"]["full_rank"] == "32"
    assert rows["d1"]["params"] == 576 * 32 + 32 and rows["d1"]["params_after"] == 3 * 608 + 32
    assert rows["c2"]["params_after"] == 4 * (3 * 8 + 3 * 16) + 16
    assert rows["c2"]["macs"] == 36 * 9 * 8 * 16 and rows["c2"]["macs_after"] == 36 * 4 * 72
    kernel = keras.ops.convert_to_numpy(model.get_layer("d1").kernel)
    s = np.linalg.svd(kernel, compute_uv=False)
    discarded = np.sqrt((s[3:] ** 2).sum() / (s**2).sum())
    np.testing.assert_allclose(rows["d1"]["kernel_error"], discarded, rtol=1e-4)
    text = summary.to_text()
    assert "d1" in text and "total (model)" in text and "spatial" in text
    assert summary.to_markdown().startswith("### Factorized layers")
    replaced = summary.to_dict()["totals"]["replaced_layers"]
    assert replaced["params"] == rows["c2"]["params"] + rows["d1"]["params"]


@pytest.mark.parametrize("scheme", ["spatial", "channel"])
def test_report_macs_agree_with_the_tflite_ops(scheme):
    model = randomize_biases(_functional())  # the converter drops zero biases
    factorized = factorize(model, rank={"c2": 3, "d1": 4}, conv_scheme=scheme)
    summary = tc.report(factorized, tc.export_tflite(factorized)).summary
    assert summary["macs"] == summary["tflite_macs"]
    # Every CONV_2D has a bias in TFLite: the inner convolutions get zero ones.
    inner_biases = 3 if scheme == "spatial" else 3 + 3
    assert summary["tflite_params"] - summary["params"] == inner_biases


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"rank": 0},
            ValueError,
            r"Layer 'c1': `rank` must be a positive integer. Received: rank=0",
        ),
        (
            {"rank": 40, "layers": ["d1"]},
            ValueError,
            r"Layer 'd1': `rank` must be at most 32 .* Received: rank=40",
        ),
        ({"rank": 25, "layers": ["c2"]}, ValueError, r"Layer 'c2': `rank` must be at most 24"),
        ({"rank": (2, 2), "layers": ["d1"]}, ValueError, r"one rank \(an integer\)"),
        ({"energy": 0.0}, ValueError, r"`energy` must be a number in \(0, 1\]"),
        ({"energy": {"d1": 1.5}}, ValueError, r"Layer 'd1': `energy` .* Received: energy=1.5"),
        ({"compression": 1.0}, ValueError, r"`compression` must be a number in \(0, 1\)"),
        ({"compression": 1e-6}, ValueError, r"`compression`=1e-06 cannot be met"),
        ({}, ValueError, "exactly one of `rank`, `energy` and `compression`. Received: none"),
        ({"rank": 2, "energy": 0.5}, ValueError, "Received: rank, energy"),
        ({"rank": 2, "layers": ["fc9"]}, ValueError, r"No layer named 'fc9' in model 'net'"),
        (
            {"rank": 2, "layers": ["flatten"]},
            ValueError,
            r"Layer 'flatten' cannot be factorized: it is a Flatten",
        ),
        ({"rank": {"d1": 2}, "layers": ["d1"]}, ValueError, "leave `layers` unset"),
        ({"rank": 2, "layers": [3]}, TypeError, "layer names and layer classes"),
        ({"rank": 2, "conv_scheme": "cp"}, ValueError, "`conv_scheme` must be one of"),
        ({"compression": 0.5, "budget": "flops"}, ValueError, "`budget` must be one of"),
        ({"rank": 2, "svd": "arpack"}, ValueError, "`svd` must be one of"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        factorize(_functional(), **kwargs)


def test_refuses_models_it_cannot_clone_and_layers_already_factorized():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(4)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="subclassed"):
        factorize(net, rank=1)
    once = factorize(_functional(), rank=2, layers=["d1"])
    with pytest.raises(ValueError, match="'d1' cannot be factorized: it is already factorized"):
        factorize(once, rank=2, layers=["d1"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert factorize(once, rank=2, layers=[L.Dense]).get_layer("d1").rank == 2
