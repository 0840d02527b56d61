"""Every registered built-in layer kind prunes inside `fit`; weightless layers pass through."""

import keras
import numpy as np
import pytest

from tfcompress.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep
from tfcompress.pruning.prunable import prunable_weights

HALF = ConstantSparsity(0.5, begin_step=0, frequency=1)
rng = np.random.default_rng(0)

CASES = {
    "Embedding": (lambda: keras.layers.Embedding(50, 8), (6,), "int"),
    "EinsumDense": (lambda: keras.layers.EinsumDense("ab,bc->ac", output_shape=8), (12,), None),
    "Conv1D": (lambda: keras.layers.Conv1D(8, 3), (10, 4), None),
    "DepthwiseConv2D": (lambda: keras.layers.DepthwiseConv2D(3), (8, 8, 4), None),
    "SeparableConv2D": (lambda: keras.layers.SeparableConv2D(8, 3), (8, 8, 4), None),
    "Conv2DTranspose": (lambda: keras.layers.Conv2DTranspose(4, 3), (6, 6, 4), None),
    "LSTM": (lambda: keras.layers.LSTM(8), (5, 4), None),
    "GRU": (lambda: keras.layers.GRU(8), (5, 4), None),
    "MultiHeadAttention": (lambda: built_attention(), (5, 8), "attention"),
}


def built_attention():
    layer = keras.layers.MultiHeadAttention(2, 4)
    layer.build((None, 5, 8), (None, 5, 8))  # its build takes two shapes
    return layer


def test_layer_that_needs_several_shapes_says_build_it_first():
    wrapper = PruneLowMagnitude(keras.layers.MultiHeadAttention(2, 4, name="mha"), HALF)
    with pytest.raises(ValueError, match="'mha' cannot be built from one input shape"):
        wrapper.build((None, 5, 8))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_registered_layer_prunes_in_fit(kind):
    make, shape, mode = CASES[kind]
    inputs = keras.Input(shape, dtype="int32" if mode == "int" else "float32")
    wrapper = PruneLowMagnitude(make(), HALF)
    x = wrapper(inputs, value=inputs) if mode == "attention" else wrapper(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    if mode == "int":
        data = rng.integers(0, 50, (64, *shape))
    else:
        data = rng.random((64, *shape)).astype("float32")
    model.compile("adam", "mse")
    model.fit(data, rng.random((64, 3)), batch_size=32, verbose=0, callbacks=[UpdatePruningStep()])
    weights = wrapper.prunable_weights
    assert weights and len(weights) == len(prunable_weights(wrapper.layer))
    for weight in weights:
        value = weight.numpy()
        assert (value == 0).mean() == pytest.approx(0.5, abs=0.5 / value.size + 1e-9), weight.path


@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.BatchNormalization(),
        keras.layers.LayerNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
        keras.layers.Add(),
    ],
)
def test_layers_with_nothing_to_prune_are_known(layer):
    if isinstance(layer, keras.layers.Add):
        assert prunable_weights(layer) is None  # unknown, weightless: passes through
    else:
        layer.build((None, 4, 4, 3))
        assert prunable_weights(layer) in ([], None)
