"""`tfcompress.utils.surgery`: the one walk, clone and weight copy behind every technique."""

import keras
import numpy as np
import pytest

from tfcompress.utils.surgery import (
    Replacement,
    check_model,
    clone_graph,
    collect,
    graph_layers,
    is_graph_model,
    leaf_layers,
    rebuild_subclassed,
    require_graph,
    transform,
)

L = keras.layers
X = np.random.RandomState(0).rand(4, 6).astype("float32")


def _functional():
    inner = keras.Sequential([L.Dense(5, name="hidden")], name="inner")
    inputs = keras.Input((6,))
    outputs = L.Dense(3, name="head")(inner(L.Dense(4, name="first")(inputs)))
    return keras.Model(inputs, outputs, name="net")


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class Net(keras.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = L.Dense(units, name="hidden")
        self.head = L.Dense(2, name="head")

    def call(self, x):
        return self.head(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Plain(keras.layers.Wrapper):
    def call(self, x):
        return self.layer(x)


def _built_net():
    net = Net()
    net(X)
    return net


def test_graph_model_probe_and_checks():
    assert is_graph_model(_functional()) and not is_graph_model(_built_net())
    assert not is_graph_model(L.Dense(2))
    with pytest.raises(TypeError, match=r"entry: `arg` must be a keras.Model. Received: arg of "):
        check_model("x", "entry", "arg")
    with pytest.raises(ValueError, match="entry: model 'm' was never built"):
        check_model(keras.Sequential([L.Dense(2)], name="m"), "entry", "arg")
    with pytest.raises(ValueError, match="Thing needs a Sequential .* subclassed. Do this."):
        require_graph(_built_net(), "Thing", "Do this.")


def test_leaves_collect_and_graph_layers():
    model = _functional()
    wrapped = Plain(L.Dense(2, name="inside"))
    assert [layer.name for layer in leaf_layers(model)][1:] == ["first", "hidden", "head"]
    assert leaf_layers(wrapped) == [wrapped.layer] and leaf_layers(wrapped, (Plain,)) == [wrapped]
    assert collect(keras.Sequential([keras.Input((3,)), wrapped]), Plain) == [wrapped]
    assert [layer.name for layer in graph_layers(model)] == ["first", "hidden", "head"]


def test_transform_dispatches_and_words_errors():
    seen = []

    def replace_in(model):
        seen.append(model.name)
        return lambda layer: None

    def args(value):
        return transform(value, replace_in, lambda layer: f"layer {layer.name}", "entry", "arg")

    assert args(L.Dense(2, name="d")) == "layer d"
    assert args([L.Dense(2, name="a"), L.Dense(2, name="b")]) == ["layer a", "layer b"]
    copy = args(_functional())
    assert seen == ["net"] and copy.get_layer("head") is not None
    with pytest.raises(TypeError, match=r"`arg` must be a keras.layers.Layer, a list .* type int"):
        args(3)
    with pytest.raises(ValueError, match="entry: model 'm' was never built"):
        args(keras.Sequential([L.Dense(2)], name="m"))


def test_clone_graph_replacements_and_weights():
    model = _functional()
    before = model(X)

    def replace(layer):
        if layer.name == "first":
            return Replacement(wrap=Plain)  # unbuilt copy, weights copied once built
        if layer.name == "hidden":
            return Replacement(wrap=Plain, built=True)  # built with its weights first
        return None

    copy = clone_graph(model, replace)
    first = next(layer for layer in copy.layers if isinstance(layer, Plain))
    assert first.layer.name == "first" and first.layer is not model.get_layer("first")
    assert isinstance(copy.get_layer("inner").layers[0], Plain)
    np.testing.assert_allclose(copy(X), before, atol=1e-6)
    stripped = clone_graph(
        copy, lambda layer: Replacement(unwrap=True) if isinstance(layer, Plain) else None
    )
    assert not collect(stripped, Plain)
    np.testing.assert_allclose(stripped(X), before, atol=1e-6)
    zeros = clone_graph(
        model,
        lambda layer: Replacement(weights=lambda: [np.zeros_like(w) for w in layer.get_weights()]),
    )
    np.testing.assert_allclose(zeros(X), 0.0)
    finished = L.Dense(3, name="head", kernel_initializer="ones")
    finished.build((None, 5))
    swapped = clone_graph(model, lambda layer: finished if layer.name == "head" else None)
    assert swapped.get_layer("head") is finished


def test_clone_graph_with_call_makes_a_sequential_functional_without_touching_it():
    seq = keras.Sequential([keras.Input((6,), name="x"), L.Dense(3, name="a"), L.Dense(2)])
    calls = []

    def call(layer, *args, **kwargs):
        calls.append(layer.name)
        return layer(*args, **kwargs)

    copy = clone_graph(seq, lambda layer: None, call=call)
    assert not isinstance(copy, keras.Sequential) and copy.layers[0].name == "x"
    assert calls == [layer.name for layer in seq.layers]
    assert all(len(layer._inbound_nodes) == 1 for layer in seq.layers)  # the original is untouched
    np.testing.assert_allclose(copy(X), seq(X), atol=1e-6)


def test_rebuild_subclassed_wraps_the_class_layers_and_copies_weights():
    net = _built_net()
    before = net(X)
    wrapped = rebuild_subclassed(
        net, lambda layer: Replacement(wrap=Plain) if layer.name == "hidden" else None
    )
    assert type(wrapped) is Net and isinstance(wrapped.hidden, Plain) and wrapped is not net
    assert isinstance(net.hidden, L.Dense)  # the original is untouched
    np.testing.assert_allclose(wrapped(X), before, atol=1e-6)
    plain = rebuild_subclassed(
        wrapped, lambda layer: Replacement(unwrap=True) if isinstance(layer, Plain) else None
    )
    assert isinstance(plain.hidden, L.Dense)
    np.testing.assert_allclose(plain(X), before, atol=1e-6)
    lent = L.Dense(2, name="other", kernel_initializer="zeros")
    lent.build((None, 4))
    zero_head = rebuild_subclassed(net, lambda layer: lent if layer.name == "head" else None)
    assert zero_head.head is not lent and isinstance(zero_head.head, L.Dense)  # weights only
    np.testing.assert_allclose(zero_head(X), 0.0)


def test_rebuild_subclassed_refuses_unbuilt_and_unconfigurable_models():
    with pytest.raises(ValueError, match="must be built"):
        rebuild_subclassed(Net(), lambda layer: None)

    class Bare(keras.Model):  # a required argument, and no get_config to recreate it from
        def __init__(self, units):
            super().__init__()
            self.dense = L.Dense(units)

        def call(self, x):
            return self.dense(x)

    bare = Bare(2)
    bare(X)
    with pytest.raises(ValueError, match=r"cannot be re-created from its `get_config\(\)`"):
        rebuild_subclassed(bare, lambda layer: None)
