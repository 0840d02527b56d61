"""Parameters, sparsity and MACs on layers whose counts are known by hand."""

import keras
import numpy as np
import pytest
from helpers import randomize_biases

import tfcompress as tc
from tfcompress.reporting.keras_stats import keras_layer_stats


def single_layer_stats(layer, input_shape):
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    (row,) = keras_layer_stats(model)
    return row


@pytest.mark.parametrize(
    "layer,input_shape,params,macs",
    [
        # Dense on a sequence: every one of the 7 positions does 16 x 8 MACs.
        (keras.layers.Dense(8), (7, 16), 16 * 8 + 8, 7 * 16 * 8),
        # 3x3 conv, valid padding: 10x10 -> 8x8 outputs, each 3*3*4 MACs per filter.
        (keras.layers.Conv2D(6, 3), (10, 10, 4), 3 * 3 * 4 * 6 + 6, 8 * 8 * 6 * 3 * 3 * 4),
        # strided "same" conv: 10x10 -> 5x5.
        (
            keras.layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False),
            (10, 10, 4),
            3 * 3 * 4 * 6,
            5 * 5 * 6 * 3 * 3 * 4,
        ),
        # grouped conv: each filter sees 4 / 2 input channels.
        (
            keras.layers.Conv2D(6, 3, groups=2),
            (10, 10, 4),
            3 * 3 * 2 * 6 + 6,
            8 * 8 * 6 * 3 * 3 * 2,
        ),
        (keras.layers.Conv1D(5, 3), (12, 4), 3 * 4 * 5 + 5, 10 * 5 * 3 * 4),
        # depthwise with multiplier 2: 8 output channels, 9 MACs each per pixel.
        (
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            (6, 6, 4),
            3 * 3 * 4 * 2 + 8,
            6 * 6 * 8 * 9,
        ),
        # separable: depthwise 6*6*4*9, then pointwise 6*6*4*5.
        (
            keras.layers.SeparableConv2D(5, 3, padding="same"),
            (6, 6, 4),
            3 * 3 * 4 + 4 * 5 + 5,
            6 * 6 * 4 * 9 + 6 * 6 * 4 * 5,
        ),
        # transpose conv: every input pixel scatters a 3x3x5 patch per input channel.
        (
            keras.layers.Conv2DTranspose(5, 3, strides=2),
            (4, 4, 2),
            3 * 3 * 5 * 2 + 5,
            4 * 4 * 2 * 3 * 3 * 5,
        ),
        (
            keras.layers.EinsumDense("abc,cd->abd", output_shape=(3, 6), bias_axes="d"),
            (3, 4),
            4 * 6 + 6,
            3 * 6 * 4,
        ),
        # LSTM: 7 steps, 4 gates: (in 3 + units 5) x (4 * 5) per step.
        (keras.layers.LSTM(5), (7, 3), 4 * 5 * (3 + 5 + 1), 7 * (3 + 5) * 4 * 5),
        (keras.layers.Embedding(50, 4), (7,), 200, 0),
        (keras.layers.BatchNormalization(), (5, 5, 3), 4 * 3, 0),
        (keras.layers.MaxPooling2D(2), (4, 4, 3), 0, 0),
    ],
)
def test_params_and_macs_by_hand(layer, input_shape, params, macs):
    row = single_layer_stats(layer, input_shape)
    assert row.params == params
    assert row.macs == macs
    assert row.float32_bytes == 4 * params


def test_sparsity_counts_kernels_only():
    layer_kernel = np.ones((8, 16), dtype="float32")
    layer_kernel[:, :4] = 0  # 32 zeros of 128
    model_layer = keras.layers.Dense(16)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, model_layer(inputs))
    model_layer.kernel.assign(layer_kernel)
    (row,) = keras_layer_stats(model)
    assert row.sparsity == pytest.approx(32 / 128)
    assert row.nonzero == 128 - 32  # the bias is zero too, but not a kernel
    assert row.params == 128 + 16
    assert row.unique == 2


def test_dynamic_sizes_give_unknown_macs():
    row = single_layer_stats(keras.layers.Conv1D(5, 3), (None, 4))
    assert row.params == 65 and row.macs is None


def test_nested_models_are_named_and_counted():
    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="d")], name="inner")
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    rows = {r.name: r for r in keras_layer_stats(outer)}
    assert set(rows) == {"inner/d", "head"}
    assert rows["inner/d"].macs == 32 and rows["head"].macs == 8


def test_subclassed_model_macs_unknown_but_params_counted():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = keras.layers.Dense(3)

        def call(self, x):
            return self.fc(x)

    net = Net()
    net(np.zeros((1, 5), "float32"))
    (row,) = keras_layer_stats(net)
    assert row.params == 18 and row.macs is None
    result = tc.report(net)
    assert result.summary["macs"] is None and result.summary["params"] == 18
    assert "?" in result.to_text()


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
@pytest.mark.parametrize(
    "builder", [tc.models.lenet_300_100, tc.models.small_cnn, tc.models.tiny_mobilenet]
)
def test_keras_and_tflite_counts_agree(builder, mode, digits):
    model = randomize_biases(builder(input_shape=(8, 8, 1)))
    content = tc.export_tflite(
        model, mode=mode, representative_data=digits.x_train[:20].astype("float32")
    )
    result = tc.report(model, content)
    s = result.summary
    assert s["tflite_macs"] == s["macs"]
    kernels = sum(r.kernel_params for r in result.layers)
    assert sum(r.kernel_params for r in result.ops) == kernels
    if builder is not tc.models.tiny_mobilenet:  # BatchNorm folds into conv biases there
        assert s["tflite_params"] == s["params"]
    if mode != "dynamic":  # dynamic keeps tensors under 1,024 elements in float
        itemsize = {"float32": 4, "float16": 2, "int8": 1}[mode]
        kernel_bytes = sum(r.weights[0].params for r in result.ops if r.weights) * itemsize
        bias_size = {"float32": 4, "float16": 2, "int8": 4}[mode]  # int8 models: int32 bias
        bias_bytes = sum(w.params * bias_size for r in result.ops for w in r.weights[1:])
        assert s["tflite_weight_bytes"] == kernel_bytes + bias_bytes
        assert {r.weights[0].dtype for r in result.ops if r.weights} == {
            "float32": {"float32"},
            "float16": {"float16"},
            "int8": {"int8"},
        }[mode]
