"""`report(tflite=...)` on files from elsewhere: sparse tensors, custom ops, tf.keras names."""

import json
import re

import flatbuffers
import keras
import numpy as np
import tensorflow as tf
from helpers import randomize_biases
from tensorflow.lite.python import schema_py_generated as schema

import tfcompress as tc

CUSTOM = 32  # BuiltinOperator.CUSTOM


def rewritten(content: bytes, edit) -> bytes:
    """`content` with `edit(model)` applied to its object tree (the official schema's API)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def softmax_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="logits")]
    return randomize_biases(keras.Sequential([*layers, keras.layers.Softmax()]))


def with_custom_softmax(model):
    """The SOFTMAX op made a custom op no runtime here knows."""
    for code in model.operatorCodes:
        if code.builtinCode == schema.BuiltinOperator.SOFTMAX:
            code.builtinCode = code.deprecatedBuiltinCode = CUSTOM
            code.customCode = "TfcTestOp"
    for op in model.subgraphs[0].operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode == CUSTOM:
            op.builtinOptionsType, op.builtinOptions = 0, None


def test_static_figures_need_no_interpreter(digits):
    model = softmax_model()
    content = rewritten(tc.export_tflite(model), with_custom_softmax)
    assert tc.export.flatbuffer.custom_op_codes(content) == ["TfcTestOp"]
    data = (digits.x_test[:32], digits.y_test[:32])
    result = tc.report(tflite=content, data=data)  # raised the interpreter's RuntimeError before
    assert result.summary["tflite_params"] == model.count_params()
    assert result.summary["tflite_macs"] == 640 and result.summary["tflite_bytes"] == len(content)
    assert "TfcTestOp" in [op.kind for op in result.ops]
    assert "tflite_accuracy" not in result.summary and result.latency is None
    assert set(result.missing) == {"tflite_accuracy", "latency_ms", "latency_p90_ms"}
    assert all("TfcTestOp" in why for why in result.missing.values())
    assert re.search(r"Not measured \(.tflite accuracy, latency .*TfcTestOp", result.to_text())
    assert json.loads(result.to_json())["missing"] == result.missing
    assert tc.report(tflite=content).missing == {}  # accuracy and latency not asked for


def pruned_float_tflite(model: keras.Model) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()


def test_sparse_tensors_are_counted_densified(digits):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    randomize_biases(model)
    rng = np.random.default_rng(0)
    for layer in (model.get_layer("conv"), model.get_layer("logits")):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * (rng.uniform(size=kernel.shape) < 0.1), bias])
    content = pruned_float_tflite(model)
    result = tc.report(model, content, data=(digits.x_test[:32], digits.y_test[:32]))
    summary = result.summary
    assert summary["tflite_params"] == summary["params"] == model.count_params()
    assert summary["tflite_nonzero"] == summary["nonzero"]
    assert summary["tflite_sparsity"] == summary["sparsity"] > 0.85
    assert summary["tflite_sparse_weights"] == 2
    assert ".tflite weights stored sparse" in result.to_text()
    assert "DENSIFY" not in [op.kind for op in result.ops]
    rows = [r for r in result.ops if r.params]
    assert [r.kind for r in rows] == ["CONV_2D", "FULLY_CONNECTED"]
    assert [r.macs for r in rows] == [r.macs for r in result.layers if r.params]
    for row in rows:
        kernel = row.weights[0]
        assert kernel.stored_values is not None and kernel.stored_values < kernel.params
    assert summary["tflite_accuracy"] == summary["keras_accuracy"]  # the interpreter agrees


def depthwise_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, name="conv_dw_1")(inputs)
    x = keras.layers.BatchNormalization(name="conv_dw_1_bn")(x)  # folded into the depthwise
    x = keras.layers.SeparableConv2D(4, 3, name="block1_sepconv1")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="net")


def without_trace_suffixes(model):
    """Tensor names as tf.keras writes them (`net/conv_dw_1/...`, no second-trace `_1`)."""
    for tensor in model.subgraphs[0].tensors:
        tensor.name = re.sub(rb"_1/", b"/", tensor.name)


def test_depthwise_and_separable_rows_keep_their_layer_names():
    model = depthwise_model()
    content = tc.export_tflite(model)
    expected = ["conv_dw_1", "block1_sepconv1", "block1_sepconv1", "logits"]
    for variant in (content, rewritten(content, without_trace_suffixes)):
        result = tc.report(model, variant)
        rows = [(r.name, r.kind) for r in result.ops if r.params]
        assert [name for name, _ in rows] == expected, rows
        assert {name for name, _ in rows} <= {r.name for r in result.layers}


def test_a_separable_conv_counts_the_unique_values_of_both_kernels():
    layer = keras.layers.SeparableConv2D(3, 3)
    model = keras.Sequential([keras.Input((6, 6, 3)), layer])
    rng = np.random.default_rng(0)
    depthwise = rng.choice([1.0, 2.0], size=layer.depthwise_kernel.shape)
    pointwise = rng.choice([3.0, 4.0, 5.0], size=layer.pointwise_kernel.shape)
    layer.set_weights([depthwise, pointwise, np.zeros(3)])
    (row,) = tc.report(model).layers
    assert row.unique == 5
