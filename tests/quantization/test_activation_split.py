"""`split_activation` and `OutputQuantization`: the activation taken out, the ranges around it."""

import keras
import numpy as np
import pytest

from tfcompress.quantization import ActivationQuantizer
from tfcompress.quantization.activation_split import split_activation
from tfcompress.quantization.output_quantization import OutputQuantization

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("activation", ["linear", "relu", "relu6"])
def test_fused_activations_stay_in_the_layer(activation):
    dense = keras.layers.Dense(3, activation=activation)
    assert split_activation(dense) == (dense, None)


def test_layers_without_an_activation_are_kept():
    add = keras.layers.Add()
    assert split_activation(add) == (add, None)


def test_other_activations_are_split_off_a_linear_copy():
    dense = keras.layers.Dense(3, activation="gelu")
    dense.build((None, 4))
    inner, activation = split_activation(dense)
    assert activation == "gelu" and inner is not dense
    assert inner.get_config()["activation"] == "linear"
    assert dense.get_config()["activation"] == "gelu"  # the user's layer is untouched
    for ours, theirs in zip(inner.weights, dense.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_unbuilt_layer_gives_an_unbuilt_copy():
    inner, activation = split_activation(keras.layers.Dense(3, activation="tanh"))
    assert activation == "tanh" and not inner.built


def _output(activation, quantized=True):
    quantizer = ActivationQuantizer() if quantized else None
    owner = keras.layers.Layer(name="owner")
    output = OutputQuantization(quantizer, activation)
    output.build(owner)
    return output, owner


def test_fused_output_is_quantized_once():
    output, owner = _output(None)
    assert output.pre_activation_ranges is None
    assert [w.path for w in owner.weights] == [
        "owner/output_min",
        "owner/output_max",
        "owner/output_initialized",
    ]
    x = RNG.normal(size=(16, 4)).astype("float32")
    y = output(x, training=True).numpy()
    assert np.unique(y).size <= 256
    assert float(output.output_ranges["max"].numpy()) == pytest.approx(x.max())


def test_split_activation_is_quantized_before_and_after():
    output, owner = _output("elu")
    assert len(owner.weights) == 6
    assert owner.weights[3].path == "owner/pre_activation_min"
    x = RNG.normal(size=(16, 4)).astype("float32")
    y = output(x, training=True).numpy()
    assert float(output.pre_activation_ranges["min"].numpy()) == pytest.approx(x.min())
    lo, hi = (float(output.output_ranges[k].numpy()) for k in ("min", "max"))
    assert lo < 0 and abs(y.min() - lo) <= (hi - lo) / 255  # the range is taken after the ELU


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "tanh"])
def test_fixed_range_activations_have_no_output_range(activation):
    output, _ = _output(activation)
    assert output.output_ranges is None and output.pre_activation_ranges is not None
    y = output(RNG.normal(size=(4, 3)).astype("float32"), training=True).numpy()
    if activation == "softmax":
        np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)


def test_without_a_quantizer_the_activation_still_runs():
    output, owner = _output("sigmoid", quantized=False)
    assert not owner.weights
    x = RNG.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(output(x, training=True), keras.ops.sigmoid(x), rtol=1e-6)
