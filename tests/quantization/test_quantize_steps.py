"""The steps of `quantize_apply`, each on its own: configs, plans, layer replacement, inputs."""

import keras
import numpy as np
import pytest

from tfcompress.quantization import (
    QuantizeLayer,
    QuantizeScheme,
    QuantizeWrapper,
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
)
from tfcompress.quantization.graph_plan import plan_levels
from tfcompress.quantization.input_quantizers import InputQuantizers
from tfcompress.quantization.layer_quantizer import LayerQuantizer
from tfcompress.quantization.quantize_apply import apply_quantization
from tfcompress.quantization.resolve import resolve_configs

L = keras.layers
SCHEME = QuantizeScheme()
X = np.random.RandomState(0).rand(4, 6, 6, 1).astype("float32")


def _body():
    return [
        L.Rescaling(0.5, name="scale"),
        L.Conv2D(4, 3, name="conv"),
        L.BatchNormalization(name="bn"),
        L.ReLU(name="relu"),
        L.Flatten(name="flat"),
        L.Dense(3, name="fc"),
    ]


def _functional():
    x = inputs = keras.Input((6, 6, 1), name="image")
    for layer in _body():
        x = layer(x)
    return keras.Model(inputs, x, name="net")


def _sequential():
    return keras.Sequential([keras.Input((6, 6, 1), name="image"), *_body()], name="seq")


def test_resolve_configs_of_annotated_layers_or_all():
    inputs = keras.Input((4,))
    x = quantize_annotate_layer(L.Dense(4, name="fc"))(inputs)
    model = keras.Model(inputs, L.Dense(2, name="head")(x))
    configs = resolve_configs(model, SCHEME, None)
    assert [layer.layer.name for layer in configs] == ["fc"]
    everything = resolve_configs(model, SCHEME, {"head": "float"}, annotate_all=True)
    names = {getattr(layer, "layer", layer).name: config for layer, config in everything.items()}
    assert set(names) == {"fc", "head"} and names["head"] is None
    assert names["fc"].weight_quantizers["kernel"].bits == 8
    with pytest.raises(ValueError, match="no annotated layers"):
        resolve_configs(_functional(), SCHEME, None)


@pytest.mark.parametrize("make", [_functional, _sequential])
def test_plan_folds_batch_norm_and_fuses_relu(make):
    model = make()
    plans = plan_levels(model, resolve_configs(model, SCHEME, None, annotate_all=True))
    plan = plans[model.get_layer("conv")]
    assert {name: bn.name for name, bn in plan.folds.items()} == {"conv": "bn"}
    assert plan.folded == {"bn"} and plan.fused_output == {"conv"}
    assert plan.reads_input == {"scale"}
    assert all(plans[layer] is plan for layer in model.layers)


def test_plan_levels_covers_nested_models():
    inner = keras.Sequential([L.Dense(4, name="hidden"), L.ReLU(name="act")], name="inner")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, L.Dense(2, name="head")(inner(inputs)))
    plans = plan_levels(model, resolve_configs(model, SCHEME, None, annotate_all=True))
    assert plans[inner.get_layer("hidden")].fused_output == {"hidden"}
    assert plans[model.get_layer("head")] is not plans[inner.get_layer("hidden")]


def test_layer_quantizer_replaces_and_records_roles():
    model = _functional()
    configs = resolve_configs(model, SCHEME, {"fc": "float"}, annotate_all=True)
    inputs = InputQuantizers(model, SCHEME)
    quantizer = LayerQuantizer(configs, plan_levels(model, configs), SCHEME, inputs)
    new = {name: quantizer.replace(model.get_layer(name)) for name in ("scale", "conv", "bn", "fc")}
    assert isinstance(new["scale"], L.Rescaling) and quantizer.preprocessing == {new["scale"]}
    conv = new["conv"]
    assert isinstance(conv, QuantizeWrapper) and conv.batch_norm is not None
    assert conv.quantize_config.output_quantizer is None  # the fused ReLU holds the range
    assert quantizer.folded == {new["bn"]} and quantizer.quantized == {conv, new["bn"]}
    assert type(new["fc"]) is L.Dense  # "float": a plain copy holding the weights
    np.testing.assert_array_equal(new["fc"].kernel.numpy(), model.get_layer("fc").kernel.numpy())
    x = keras.Input((4, 4, 4))
    assert quantizer.call(new["bn"], x) is x  # a folded BN is skipped


def test_input_quantizers_quantize_each_float_input_once():
    image = keras.Input((4,), name="image")
    ids = keras.Input((2,), dtype="int32", name="ids")
    model = keras.Model([image, ids], [L.Dense(1)(image), ids])
    inputs = InputQuantizers(model, SCHEME)
    new_image, new_ids = inputs.tensors
    assert new_image.name == "image" and new_ids.dtype == "int32"
    once = inputs.quantize_input(new_image)
    assert inputs.quantize_input(new_image) is once
    assert isinstance(once._keras_history.operation, QuantizeLayer)
    assert once._keras_history.operation.name == "quantize_layer"
    assert inputs.quantize_input(new_ids) is new_ids  # integer inputs stay as they are
    other = keras.Input((4,))
    assert inputs.quantize_input(other) is other  # not an input of the new model
    assert inputs.quantize(other)._keras_history.operation.name == "quantize_layer_1"


def test_one_clone_equals_annotate_then_apply():
    model = _functional()
    direct = apply_quantization(model, SCHEME, None, annotate_all=True)
    two_steps = quantize_apply(quantize_annotate_model(model))

    def kinds(model):
        return [(layer.name, type(layer)) for layer in model.layers]

    assert kinds(direct) == kinds(two_steps)
    assert len(direct.weights) == len(two_steps.weights)
    for a, b in zip(direct.weights, two_steps.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(direct(X, training=True), two_steps(X, training=True), atol=1e-6)
    np.testing.assert_allclose(direct(X), two_steps(X), atol=1e-6)
