"""`stripped_layer`: a wrapper's plain layer, with its values, activation and folded bias."""

import keras
import numpy as np

from tfcompress.quantization.stripping import stripped_layer

RNG = np.random.default_rng(0)


def _layer(use_bias=True):
    dense = keras.layers.Dense(3, use_bias=use_bias, bias_initializer="random_normal")
    dense.build((None, 4))
    return dense


def test_values_replace_their_weights_and_the_rest_is_copied():
    dense = _layer()
    kernel = RNG.normal(size=(4, 3)).astype("float32")
    plain = stripped_layer(dense, {id(dense.kernel): kernel})
    assert plain is not dense and type(plain) is keras.layers.Dense
    np.testing.assert_array_equal(plain.kernel.numpy(), kernel)
    np.testing.assert_array_equal(plain.bias.numpy(), dense.bias.numpy())
    assert plain.get_config()["activation"] == "linear"


def test_split_activation_comes_back():
    plain = stripped_layer(_layer(), {}, activation="softmax")
    assert plain.get_config()["activation"] == "softmax"


def test_folded_bias_adds_a_bias_to_a_layer_without_one():
    dense = _layer(use_bias=False)
    bias = RNG.normal(size=3).astype("float32")
    plain = stripped_layer(dense, {}, folded_bias=bias)
    assert plain.use_bias and [w.name for w in plain.weights] == ["kernel", "bias"]
    np.testing.assert_array_equal(plain.kernel.numpy(), dense.kernel.numpy())
    np.testing.assert_array_equal(plain.bias.numpy(), bias)


def test_folded_bias_replaces_an_existing_bias():
    dense = _layer()
    bias = RNG.normal(size=3).astype("float32")
    np.testing.assert_array_equal(stripped_layer(dense, {}, folded_bias=bias).bias.numpy(), bias)
