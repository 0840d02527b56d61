"""Factorized models as `.tflite`: the ops they become, float parity, int8 QAT parity."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier, randomize_biases

import tfcompress as tc
from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.factorization import factorize

L = keras.layers
WEIGHT_OPS = ("CONV_2D", "FULLY_CONNECTED")


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 10, 3))
    x = L.Conv2D(12, 3, padding="same", activation="relu", name="conv")(inputs)
    x = L.Flatten()(x)
    x = L.Dense(24, activation="relu", name="fc")(x)
    return randomize_biases(keras.Model(inputs, L.Dense(5, name="out")(x)))


def _weight_shapes(info: TFLiteFile) -> list[tuple[str, tuple]]:
    return [(op.name, info.tensors[op.inputs[1]].shape) for op in info.ops if op.name in WEIGHT_OPS]


@pytest.mark.parametrize(
    ("scheme", "rank", "conv_shapes"),
    [
        ("spatial", 4, [(4, 3, 1, 3), (12, 1, 3, 4)]),
        ("channel", (2, 5), [(2, 1, 1, 3), (5, 3, 3, 2), (12, 1, 1, 5)]),
    ],
)
def test_float_tflite_runs_the_factors_as_plain_ops_and_agrees(scheme, rank, conv_shapes, rng):
    factorized = factorize(_model(), rank={"conv": rank, "fc": 6}, conv_scheme=scheme)
    content = export_tflite(factorized)
    shapes = _weight_shapes(TFLiteFile(content))
    # TFLite stores CONV_2D filters [out, kh, kw, in] and FULLY_CONNECTED weights [out, in].
    expected = [("CONV_2D", s) for s in conv_shapes]
    expected += [
        ("FULLY_CONNECTED", (6, 1200)),
        ("FULLY_CONNECTED", (24, 6)),
        ("FULLY_CONNECTED", (5, 24)),
    ]
    assert shapes == expected
    x = rng.normal(size=(64, 10, 10, 3)).astype("float32")
    keras_out = factorized.predict(x, verbose=0)
    tflite_out = TFLiteModel(content).predict(x)
    assert np.abs(tflite_out - keras_out).max() <= 1e-5 * np.abs(keras_out).max()


def test_int8_qat_of_a_factorized_cnn_is_all_int8_and_agrees(trained_cnn, mnist):
    factorized = factorize(trained_cnn, rank={"conv2": 16, "fc1": 16})
    keras.utils.set_random_seed(5)
    qat = compile_classifier(tc.quantize_model(factorized), learning_rate=1e-4)
    qat.fit(mnist.x_train[:1024], mnist.y_train[:1024], epochs=1, batch_size=64, verbose=0)
    content = export_tflite(qat, mode="int8")
    info = TFLiteFile(content)
    weight_ops = [op for op in info.ops if op.name in WEIGHT_OPS]
    assert [op.name for op in weight_ops] == ["CONV_2D"] * 3 + ["FULLY_CONNECTED"] * 3
    for op in weight_ops:  # int8 data and weights in, int8 out
        assert [info.tensors[i].dtype for i in op.inputs[:2]] == ["int8", "int8"], op
        assert info.tensors[op.outputs[0]].dtype == "int8", op
    names = [op.name for op in info.ops]
    assert names.count("QUANTIZE") == 1 and names.count("DEQUANTIZE") == 1, names
    keras_top1 = qat.predict(mnist.x_test, verbose=0).argmax(-1)
    tflite_top1 = TFLiteModel(content).predict(mnist.x_test).argmax(-1)
    assert np.mean(keras_top1 == tflite_top1) >= 0.99
    assert np.mean(keras_top1 == mnist.y_test) >= 0.85  # a working classifier, not noise
