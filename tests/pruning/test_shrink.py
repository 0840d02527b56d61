"""Channel pruning and shrink: the smaller model computes what the masked model computed."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.pruning import (
    ConstantSparsity,
    PruneLowMagnitude,
    UpdatePruningStep,
    prune_low_magnitude,
    shrink,
)
from tfcompress.pruning.channel_graph import channel_chains

HALF = ConstantSparsity(0.5, begin_step=0, frequency=5)


def channel_prune(model, data, norm="L1", n=512, **kwargs):
    pruned = prune_low_magnitude(model, HALF, channel_norm=norm, **kwargs)
    compile_classifier(pruned).fit(
        data.x_train[:n],
        data.y_train[:n],
        batch_size=64,
        verbose=0,
        callbacks=[UpdatePruningStep()],
    )
    return pruned


def assert_same_outputs(a, b, x):
    expected = a.predict(x, verbose=0)
    np.testing.assert_allclose(
        b.predict(x, verbose=0), expected, atol=1e-4 * np.abs(expected).max()
    )


def test_small_cnn_shrinks_exactly(mnist):
    model = tc.models.small_cnn()
    pruned = channel_prune(model, mnist)
    wrapped = [layer.layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)]
    assert wrapped == ["conv1", "conv2", "fc1"]  # logits is the output: its 10 units stay
    small = shrink(pruned)
    assert_same_outputs(pruned, small, mnist.x_test[:200])
    shapes = {layer.name: layer.output.shape[-1] for layer in small.layers}
    assert (shapes["conv1"], shapes["conv2"], shapes["fc1"], shapes["logits"]) == (16, 32, 64, 10)
    # MACs by hand: 26*26*16*9 + 24*24*32*(9*16) + 4608*64 + 64*10
    summary = tc.report(small).summary
    assert summary["macs"] == 26 * 26 * 16 * 9 + 24 * 24 * 32 * 144 + 4608 * 64 + 64 * 10
    assert summary["params"] < model.count_params() / 3.9


def test_sequential_model_shrinks_exactly(digits):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(32, activation="relu", name="fc"),
            keras.layers.Dense(10, name="out"),
        ]
    )
    compile_classifier(model).fit(digits.x_train, digits.y_train, epochs=1, verbose=0)
    pruned = channel_prune(model, digits)
    small = shrink(pruned)
    assert isinstance(small, keras.Sequential)
    assert_same_outputs(pruned, small, digits.x_test)
    assert small.get_layer("c1").filters == 8 and small.get_layer("fc").units == 16
    assert small.get_layer("fc").kernel.shape == (3 * 3 * 8, 16)


def test_batchnorm_constants_fold_into_the_next_layer(digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(8, 3, name="c2")(x)  # valid padding: constants fold exactly
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    compile_classifier(model).fit(digits.x_train, digits.y_train, epochs=2, verbose=0)
    pruned = channel_prune(model, digits, norm="L2")
    small = shrink(pruned)
    assert_same_outputs(pruned, small, digits.x_test)
    assert small.get_layer("bn").output.shape[-1] == 8
    assert small.get_layer("c2").kernel.shape == (3, 3, 8, 4)
    assert small.get_layer("out").kernel.shape == (4, 10)


def test_same_padding_with_constants_is_refused(digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    model.get_layer("bn").set_weights([np.ones(8), np.full(8, 0.5), np.zeros(8), np.ones(8)])
    pruned = channel_prune(model, digits, skip=["c2"])
    with pytest.raises(ValueError, match=r"'c1'.*'c2'.*padding='same'.*Skip 'c1'"):
        shrink(pruned)


def test_residual_producers_are_left_alone(mnist):
    model = tc.models.tiny_mobilenet()
    chains = channel_chains(model)
    # stem_conv and block1_project_conv feed the residual Add; expand feeds a depthwise conv.
    assert set(chains) == {"block2_pointwise_conv"}
    pruned = channel_prune(model, mnist, n=256)
    small = shrink(pruned)
    assert_same_outputs(pruned, small, mnist.x_test[:100])
    assert small.get_layer("block2_pointwise_conv").filters == 32


def test_channel_masks_cover_bias():
    wrapper = PruneLowMagnitude(keras.layers.Dense(8), HALF, channel_norm="L1")
    wrapper.build((None, 16))
    wrapper.layer.bias.assign(np.ones(8))
    wrapper.update_masks(0.5)
    dead = ~wrapper.layer.kernel.numpy().any(axis=0)
    assert dead.sum() == 4 and not wrapper.layer.bias.numpy()[dead].any()


class TestBadInput:
    def test_nothing_to_shrink(self):
        with pytest.raises(ValueError, match="no removable all-zero channels.*channel_norm"):
            shrink(tc.models.small_cnn())

    def test_nested_model(self):
        inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
        inputs = keras.Input((4,))
        outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
        with pytest.raises(ValueError, match="flat Sequential or functional"):
            shrink(outer)

    def test_channel_norm_on_unsupported_layer(self):
        with pytest.raises(ValueError, match="channel pruning supports.*DepthwiseConv2D"):
            prune_low_magnitude(keras.layers.DepthwiseConv2D(3), channel_norm="L1")

    def test_channel_norm_values(self):
        with pytest.raises(ValueError, match="channel_norm='L3'"):
            prune_low_magnitude(keras.layers.Dense(3), channel_norm="L3")

    def test_channel_norm_with_blocks(self):
        with pytest.raises(ValueError, match="do not combine"):
            prune_low_magnitude(keras.layers.Dense(16), channel_norm="L1", block_size=(16, 4))
