"""A pruning structure asked for on a whole model: what fits is pruned, the rest is named.

Block (16x4), N:M and channel pruning on a model leave the layers (or weights) they
do not fit dense, with one warning listing them and a note in the report; layers the
user named must take the structure, or one error lists them all.
"""

import warnings

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
    strip_pruning,
)
from tfcompress.reporting.notes import layer_note

NOW = ConstantSparsity(0.5, begin_step=0, frequency=1)


def xception_like() -> keras.Model:
    """A stem conv with 27 inputs, a separable conv, a depthwise conv, a 1x1 conv, logits."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)  # [16, 27]
    x = keras.layers.SeparableConv2D(32, 3, padding="same", name="sep")(x)  # depthwise [1, 144]
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)  # [1, 288]
    x = keras.layers.Conv2D(32, 1, name="pw")(x)  # [32, 32]: fits
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="xception_like")


def prune_warning(model: keras.Model, **kwargs) -> tuple[keras.Model, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = prune_low_magnitude(model, NOW, **kwargs)
    return pruned, [str(w.message) for w in caught if "prune_low_magnitude" in str(w.message)]


def train_one_step(model: keras.Model) -> keras.Model:
    compile_classifier(model)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    model.fit(x, np.arange(4), batch_size=4, verbose=0, callbacks=[UpdatePruningStep()])
    return model


def test_block_on_a_whole_model_prunes_what_fits_with_one_warning():
    pruned, messages = prune_warning(xception_like(), block_size=(16, 4))
    assert len(messages) == 1, messages
    (message,) = messages
    left = {
        "stem": "does not divide the weight's input dimension (27",
        "dw": "does not fit the weight's output dimension (1;",
        "logits": "does not fit the weight's output dimension (10;",
    }
    for name, why in left.items():
        assert f"'{name}': left dense: block_size=(16, 4) {why}" in message
    assert "'sep': depthwise_kernel left dense" in message and "'pw'" not in message
    kinds = {layer.name: type(layer).__name__ for layer in pruned.layers}
    assert [kinds[name] for name in left] == ["Conv2D", "DepthwiseConv2D", "Dense"]
    sep = pruned.get_layer("prune_low_magnitude_sep")
    assert [w.name for w in sep.prunable_weights] == ["pointwise_kernel"]
    assert list(sep.dense_weights) == ["depthwise_kernel"]

    train_one_step(pruned)
    stripped = strip_pruning(pruned)
    pointwise = stripped.get_layer("sep").pointwise_kernel.numpy()
    assert (pointwise == 0).mean() == 0.5
    assert tc.reporting.describe_structure(pointwise.reshape(-1, 32).T) == "block 16x4"
    assert np.all(stripped.get_layer("sep").depthwise_kernel.numpy() != 0)
    assert np.all(stripped.get_layer("stem").kernel.numpy() != 0)
    assert (stripped.get_layer("pw").kernel.numpy() == 0).mean() == 0.5


def test_the_report_says_which_layers_were_left_and_why():
    pruned, _ = prune_warning(xception_like(), block_size=(16, 4))
    stripped = strip_pruning(pruned)
    for model, prefix in ((pruned, "prune_low_magnitude_"), (stripped, "")):
        report = tc.report(model)
        notes = {row.name: row.note for row in report.layers}
        assert notes["stem"].startswith("pruning: left dense") and "(27;" in notes["stem"]
        assert notes["dw"].startswith("pruning: left dense") and "(1;" in notes["dw"]
        assert notes[f"{prefix}sep"].startswith("pruning: depthwise_kernel left dense")
        assert notes[f"{prefix}pw"] is None
        assert report.to_dict()["layers"][0]["note"] == notes["stem"]
        assert "- stem: pruning: left dense" in report.to_text()


def test_n_m_on_a_whole_model_leaves_the_layers_it_does_not_divide():
    pruned, messages = prune_warning(xception_like(), sparsity_m_by_n=(2, 4))
    (message,) = messages
    assert (
        "'stem': left dense: sparsity_m_by_n=(2, 4) needs an input dimension divisible by 4; "
        "the weight (3, 3, 3, 16) as [out, in] is [16, 27]" in message
    )
    assert "'sep'" not in message and "'dw'" not in message  # 144 and 9 * 32 inputs divide
    assert layer_note(pruned.get_layer("stem")).startswith("pruning: left dense")


def test_channel_pruning_names_the_layers_it_cannot_shrink():
    inputs = keras.Input((16,))
    a = keras.layers.Dense(16, name="a")(inputs)
    b = keras.layers.Dense(16, name="b")(a)
    x = keras.layers.Add()([a, b])
    x = keras.layers.Dense(32, name="c")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="out")(x))
    pruned, messages = prune_warning(model, channel_norm="L1")
    (message,) = messages
    for name in ("a", "b", "out"):
        assert f"'{name}': left dense: its output channels reach an Add" in message
    assert "'c'" not in message
    assert isinstance(pruned.get_layer("prune_low_magnitude_c"), PruneLowMagnitude)


def test_named_layers_that_cannot_take_the_block_are_one_error():
    model = xception_like()
    with pytest.raises(ValueError, match=r"2 layer\(s\) named in `layer_sparsity`") as info:
        prune_low_magnitude(
            model, NOW, block_size=(16, 4), layer_sparsity={"stem": 0.5, "dw": 0.5, "pw": 0.5}
        )
    message = str(info.value)
    assert "'stem': block_size=(16, 4) does not divide the weight's input dimension (27" in message
    assert "'dw': block_size=(16, 4) does not fit the weight's output dimension (1" in message
    assert "'pw'" not in message
    layers = [model.get_layer(name) for name in ("stem", "sep", "pw")]
    with pytest.raises(ValueError, match=r"2 layer\(s\) given explicitly") as info:
        prune_low_magnitude(layers, NOW, block_size=(16, 4))
    assert "'stem'" in str(info.value) and "'sep': depthwise_kernel:" in str(info.value)


def test_a_structure_that_fits_no_layer_is_an_error():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, name="tiny")])
    with pytest.raises(ValueError, match=r"(?s)fits none of the prunable layers.*'tiny'"):
        prune_low_magnitude(model, NOW, block_size=(16, 4))


def test_wrapped_model_with_dense_weights_round_trips(tmp_path):
    pruned, _ = prune_warning(xception_like(), block_size=(16, 4))
    train_one_step(pruned)
    path = tmp_path / "pruned.keras"
    pruned.save(path)
    loaded = keras.models.load_model(path)
    sep = loaded.get_layer("prune_low_magnitude_sep")
    assert not sep.strict and list(sep.dense_weights) == ["depthwise_kernel"]
    x = np.ones((2, 8, 8, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), pruned.predict(x, verbose=0))


def test_wrapper_arguments():
    with pytest.raises(TypeError, match="strict=1"):
        PruneLowMagnitude(keras.layers.Dense(4), strict=1)
    wrapper = PruneLowMagnitude(keras.layers.DepthwiseConv2D(3), block_size=(16, 4), strict=False)
    with pytest.raises(ValueError, match=r"'depthwise_conv2d.*fits none of its prunable weights"):
        wrapper.build((None, 8, 8, 4))
