"""Every layer kind the issue lists trains with QAT and converts; which ops end up int8."""

import keras
import numpy as np
import pytest

from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.quantization import quantize_model

L = keras.layers


def _model(shape, body, dtype="float32"):
    inputs = keras.Input(shape, dtype=dtype)
    return keras.Model(inputs, L.Dense(3, name="head")(body(inputs)))


# name: (model factory, ops that must run in int8, ops allowed to stay float)
CASES = {
    "conv1d": (
        lambda: _model((6, 4), lambda x: L.Flatten()(L.Conv1D(5, 3, activation="relu")(x))),
        {"CONV_2D", "FULLY_CONNECTED"},
        set(),
    ),
    "separable_conv2d": (
        lambda: _model(
            (8, 8, 3), lambda x: L.Flatten()(L.SeparableConv2D(4, 3, activation="relu")(x))
        ),
        {"DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED"},
        set(),
    ),
    "conv2d_transpose": (
        lambda: _model((8, 8, 3), lambda x: L.Flatten()(L.Conv2DTranspose(4, 3, strides=2)(x))),
        {"TRANSPOSE_CONV", "FULLY_CONNECTED"},
        set(),
    ),
    "concatenate_pooling": (
        lambda: _model(
            (8, 8, 3),
            lambda x: L.GlobalAveragePooling2D()(
                L.Concatenate()([L.Conv2D(4, 1)(x), L.AveragePooling2D(1)(L.Conv2D(2, 1)(x))])
            ),
        ),
        {"CONV_2D", "AVERAGE_POOL_2D", "CONCATENATION", "MEAN", "FULLY_CONNECTED"},
        set(),
    ),
    "rescaling_reshape": (
        lambda: _model(
            (8, 8, 3), lambda x: L.Reshape((-1,))(L.Conv2D(4, 3)(L.Rescaling(0.5, offset=-1)(x)))
        ),
        {"CONV_2D", "FULLY_CONNECTED"},
        {"MUL", "ADD"},
    ),  # preprocessing before QUANTIZE
    "batch_norm_after_input": (
        lambda: _model((6, 4), lambda x: L.Flatten()(L.BatchNormalization()(x))),
        {"FULLY_CONNECTED"},
        {"MUL", "ADD"},
    ),
    "embedding": (
        lambda: _model((6,), lambda x: L.Flatten()(L.Embedding(20, 4)(x)), "int32"),
        {"GATHER", "FULLY_CONNECTED"},
        set(),
    ),
    "layer_normalization": (
        lambda: _model((6, 4), lambda x: L.Flatten()(L.LayerNormalization()(L.Dense(8)(x)))),
        {"FULLY_CONNECTED"},
        None,
    ),
    "multi_head_attention": (
        lambda: _model((6, 4), lambda x: L.Flatten()(L.MultiHeadAttention(2, 4)(x, x))),
        set(),
        None,
    ),
    "gru": (lambda: _model((6, 4), L.GRU(5)), {"FULLY_CONNECTED"}, None),
    "lstm": (lambda: _model((6, 4), L.LSTM(5)), {"FULLY_CONNECTED"}, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_trains_converts_and_agrees(name):
    make, int8_ops, float_ops = CASES[name]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = make()
    if name == "embedding":
        x = rng.integers(0, 20, size=(64, 6)).astype("int32")
    else:
        x = rng.normal(size=(64, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, 3, size=64)
    qat = quantize_model(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=2, batch_size=16, verbose=0)
    recurrent = name in ("gru", "lstm")  # the converter needs a fixed batch for the loop
    content = export_tflite(qat, mode="int8", batch_size=1 if recurrent else None)
    info = TFLiteFile(content)
    ops = {op.name for op in info.ops}
    in_int8 = {op.name for op in info.ops if info.tensors[op.outputs[0]].dtype == "int8"}
    in_float = {
        op.name
        for op in info.ops
        if info.tensors[op.outputs[0]].dtype == "float32" and op.name != "DEQUANTIZE"
    }
    assert int8_ops <= in_int8, (name, ops)
    if float_ops is not None:  # fully int8 apart from the listed preprocessing
        assert in_float <= float_ops, (name, in_float)
    keras_out = qat.predict(x, verbose=0)
    tflite_out = TFLiteModel(content).predict(x, batch_size=1 if recurrent else 64)
    scale = np.abs(keras_out).max()
    assert np.abs(keras_out - tflite_out).max() <= 0.06 * scale, name
