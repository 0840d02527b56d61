"""`quantize_model`, annotation, `quantize_apply` and `strip_quantization` on whole models."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.quantization import (
    QuantizeConfig,
    QuantizeLayer,
    QuantizeScheme,
    QuantizeWrapper,
    WeightQuantizer,
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
    quantize_scope,
    strip_quantization,
)


def _wrappers(model):
    return {layer.name: layer for layer in model.layers if isinstance(layer, QuantizeWrapper)}


def _fit_once(model, data):
    compile_classifier(model)
    history = model.fit(data.x_train[:256], data.y_train[:256], epochs=1, batch_size=64, verbose=0)
    return history.history["loss"][-1]


def test_cnn_structure_and_original_untouched(trained_cnn):
    before = [w.numpy().copy() for w in trained_cnn.weights]
    qat = quantize_model(trained_cnn)
    assert isinstance(qat.layers[1], QuantizeLayer)
    assert set(_wrappers(qat)) == {"quant_conv1", "quant_conv2", "quant_fc1", "quant_logits"}
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, trained_cnn.weights))
    assert isinstance(qat.get_layer("pool"), keras.layers.MaxPooling2D)  # ranges pass through


def test_mobilenet_folds_batch_norm_and_fuses_relu6(trained_mobilenet):
    qat = quantize_model(trained_mobilenet)
    names = [layer.name for layer in qat.layers]
    assert not any(name.endswith("_bn") or "_bn" in name.split("quant_")[-1] for name in names)
    wrappers = _wrappers(qat)
    stem = wrappers["quant_stem_conv"]
    assert stem.batch_norm is not None
    assert stem.output_ranges is None  # the ReLU6 after it holds the range (fused in TFLite)
    assert wrappers["quant_stem_relu"].output_ranges is not None
    assert wrappers["quant_block1_project_conv"].output_ranges is not None  # feeds the Add
    assert wrappers["quant_block1_add"].output_ranges is not None


def test_quantized_model_agrees_with_float_before_training(trained_mobilenet, mnist):
    qat = quantize_model(trained_mobilenet)
    qat(mnist.x_train[:256], training=True)  # one batch sets the activation ranges
    float_pred = trained_mobilenet.predict(mnist.x_test[:500], verbose=0).argmax(-1)
    qat_pred = qat.predict(mnist.x_test[:500], verbose=0).argmax(-1)
    assert np.mean(float_pred == qat_pred) > 0.9


def test_sequential_nested_and_subclassed_models_train(digits):
    layers = [keras.layers.Flatten(), keras.layers.Dense(16, activation="relu")]
    seq = keras.Sequential([keras.Input((8, 8, 1)), *layers, keras.layers.Dense(10)])
    inner = keras.Sequential([keras.layers.Dense(16, activation="relu")], name="inner")
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10)(inner(keras.layers.Flatten()(inputs)))
    nested = keras.Model(inputs, outputs)

    @keras.saving.register_keras_serializable(package="tests")
    class Sub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.flat = keras.layers.Flatten()
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.hidden(self.flat(x)))

    sub = Sub()
    sub(digits.x_train[:2])
    for model in (seq, nested, sub):
        qat = quantize_model(model)
        loss = _fit_once(qat, digits)
        assert np.isfinite(loss)
        leaves = [layer for layer in qat._flatten_layers() if isinstance(layer, QuantizeWrapper)]
        assert len(leaves) == 2, model.name
        plain = strip_quantization(qat)
        assert not any(
            isinstance(layer, (QuantizeWrapper, QuantizeLayer)) for layer in plain._flatten_layers()
        )
        x = digits.x_test[:64]
        agree = np.mean(
            plain.predict(x, verbose=0).argmax(-1) == qat.predict(x, verbose=0).argmax(-1)
        )
        assert agree > 0.9, model.name


def test_annotate_some_layers_leaves_others_float(trained_lenet):
    model = keras.models.clone_model(
        trained_lenet,
        clone_function=lambda layer: (
            quantize_annotate_layer(layer)
            if layer.name == "fc1"
            else layer.__class__.from_config(layer.get_config())
        ),
    )
    qat = quantize_apply(model)
    assert set(_wrappers(qat)) == {"quant_fc1"}


def test_precision_map_by_name_type_and_function(trained_cnn):
    qat = quantize_model(
        trained_cnn, precision={"conv1": 4, keras.layers.Dense: 8, "logits": "float"}
    )
    wrappers = _wrappers(qat)
    assert wrappers["quant_conv1"].quantize_config.weight_quantizers["kernel"].bits == 4
    assert wrappers["quant_conv2"].quantize_config.weight_quantizers["kernel"].bits == 8
    assert wrappers["quant_fc1"].quantize_config.weight_quantizers["kernel"].bits == 8
    assert "quant_logits" not in wrappers
    qat = quantize_model(
        trained_cnn,
        scheme="default_4bit",
        precision=lambda layer: 8 if layer.name == "logits" else None,
    )
    bits = {
        name: w.quantize_config.weight_quantizers["kernel"].bits
        for name, w in _wrappers(qat).items()
    }
    assert bits == {"quant_conv1": 4, "quant_conv2": 4, "quant_fc1": 4, "quant_logits": 8}


def test_custom_quantize_config_through_annotation(digits):
    config = QuantizeConfig({"kernel": WeightQuantizer(4, per_channel=False)})
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = quantize_annotate_layer(keras.layers.Dense(10, name="head"), config)(x)
    qat = quantize_apply(keras.Model(inputs, x))
    assert qat.get_layer("quant_head").quantize_config == QuantizeConfig(config.weight_quantizers)


def test_errors(trained_cnn):
    qat = quantize_model(trained_cnn)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(qat)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_annotate_model(qat)
    with pytest.raises(ValueError, match=r"Layer 'conv1'.*`precision`.*precision=6"):
        quantize_model(trained_cnn, precision={"conv1": 6})
    with pytest.raises(ValueError, match="Unknown `scheme`.*scheme='int3'"):
        quantize_model(trained_cnn, scheme="int3")
    with pytest.raises(ValueError, match="no annotated layers"):
        quantize_apply(trained_cnn)

    class Odd(keras.layers.Layer):
        def call(self, x):
            return x + 1

    inputs = keras.Input((3,))
    odd = keras.Model(inputs, Odd(name="odd")(keras.layers.Dense(3)(inputs)))
    with pytest.raises(ValueError, match=r"'odd' of type Odd has no QuantizeConfig"):
        quantize_model(odd)
    with pytest.raises(TypeError, match="keras.Model"):
        quantize_model("model")


def test_quantize_scope_loads(tmp_path, trained_lenet):
    qat = quantize_model(trained_lenet)
    path = str(tmp_path / "qat.keras")
    qat.save(path)
    with quantize_scope():
        again = keras.models.load_model(path)
    assert isinstance(again.get_layer("quant_fc1"), QuantizeWrapper)
    assert tc.quantization.is_quantized(again)


def test_learned_ranges_scheme_trains_ranges(trained_lenet, mnist):
    scheme = QuantizeScheme(learned_ranges=True)
    qat = quantize_model(trained_lenet, scheme=scheme)
    wrapper = qat.get_layer("quant_fc1")
    assert (
        wrapper.output_ranges["max"].trainable and qat.get_layer("quantize_layer").quantizer.learned
    )
    _fit_once(qat, mnist)
    high = float(wrapper.output_ranges["max"].numpy())
    # Inputs three times brighter push fc1's outputs past its range, so the fake-quant op's
    # gradient reaches `max` and the optimizer moves it (within the range it gets no gradient,
    # so whether ordinary batches move it depends on the trained model).
    x, y = mnist.x_train[:256] * 3.0, mnist.y_train[:256]
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert float(wrapper.output_ranges["max"].numpy()) != high  # gradient steps move it
    agree = np.mean(
        tc.TFLiteModel(tc.export_tflite(qat, mode="int8")).predict(mnist.x_test[:300]).argmax(-1)
        == qat.predict(mnist.x_test[:300], verbose=0).argmax(-1)
    )
    assert agree >= 0.99


def test_report_counts_wrapped_layers_like_plain_ones(trained_cnn):
    plain = tc.report(trained_cnn).summary
    wrapped = tc.report(quantize_model(trained_cnn)).summary
    assert wrapped["macs"] == plain["macs"] > 0
    assert wrapped["params"] > plain["params"]  # plus the ranges: 3 scalars per quantizer
