"""QAT gives all-int8 graphs: BN folded into split separable convolutions, operator syntax
quantized, and the float islands that remain named by `export_tflite`."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.export.float_islands import find_float_islands
from tfcompress.quantization import QuantizeScheme
from tfcompress.quantization.graph_plan import plan_levels
from tfcompress.quantization.resolve import resolve_configs

L = keras.layers


def _rgb(digits, size=16):
    """Digits as `size`x`size` three-channel images (real images, small)."""
    x = np.repeat(np.repeat(digits, size // 8, axis=1), size // 8, axis=2)
    return np.repeat(x, 3, axis=-1).astype("float32")


def _qat_int8(model, digits, steps=20):
    """The QAT model after a short fit, its int8 file, and the file's ops."""
    keras.utils.set_random_seed(0)
    qat = compile_classifier(tc.quantize_model(model), learning_rate=3e-3)
    x, y = _rgb(digits.x_train), digits.y_train
    qat.fit(x[: steps * 32], y[: steps * 32], batch_size=32, epochs=1, verbose=0)
    content = tc.export_tflite(qat, mode="int8")
    return qat, content, [op.name for op in tc.TFLiteFile(content).ops]


def _agreement(qat, content, digits):
    x = _rgb(digits.x_test)
    keras_top = qat.predict(x, verbose=0).argmax(-1)
    tflite_top = tc.TFLiteModel(content).predict(x).argmax(-1)
    return float(np.mean(keras_top == tflite_top))


def _xception_style():
    """Xception's entry flow in small: SeparableConv2D -> BN -> ReLU blocks, residual adds."""
    x = inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    residual = L.BatchNormalization()(L.Conv2D(16, 1, strides=2, padding="same")(x))
    x = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name="sep1")(x)
    x = L.Activation("relu")(L.BatchNormalization(name="sep1_bn")(x))
    x = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name="sep2")(x)
    x = L.BatchNormalization(name="sep2_bn")(x)
    x = L.add([L.MaxPooling2D(3, strides=2, padding="same")(x), residual])
    outputs = L.Dense(10)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="xception_style")


def test_plan_folds_batch_norm_into_separable_conv_and_fuses_its_relu():
    model = _xception_style()
    configs = resolve_configs(model, QuantizeScheme(), None, annotate_all=True)
    plan = plan_levels(model, configs)[model.get_layer("sep1")]
    assert plan.folds["sep1"].name == "sep1_bn" and plan.folds["sep2"].name == "sep2_bn"
    assert "sep1" in plan.fused_output and "sep2" not in plan.fused_output  # sep2: an Add next


def test_batch_norm_folds_into_split_separable_conv(digits, reload):
    qat, content, ops = _qat_int8(_xception_style(), digits)
    assert not any(isinstance(layer, L.BatchNormalization) for layer in qat.layers)
    pointwise = qat.get_layer("sep1").layers[-1]
    assert pointwise.batch_norm is not None and pointwise.output_ranges is None  # ReLU fused
    assert find_float_islands(content, qat) == []
    assert ops.count("QUANTIZE") == 1 and ops.count("DEQUANTIZE") == 1  # the model's edges
    assert "MUL" not in ops and ops.count("CONV_2D") == 4 and ops.count("DEPTHWISE_CONV_2D") == 2
    assert _agreement(qat, content, digits) >= 0.99
    x = _rgb(digits.x_test[:8])
    np.testing.assert_allclose(reload(qat).predict(x, verbose=0), qat.predict(x, verbose=0))
    stripped = tc.strip_quantization(qat)
    assert not any(isinstance(layer, L.BatchNormalization) for layer in stripped.layers)


def _operator_syntax():
    """Operations, not layers: `x + y`, `x * y`, a scalar product into a ReLU, `keras.ops`."""
    inputs = keras.Input((16, 16, 3))
    a = L.Conv2D(8, 3, padding="same")(inputs)
    b = L.Conv2D(8, 3, padding="same")(inputs)
    x = a * (L.ReLU(6.0)(b + 3.0) * (1.0 / 6.0))  # MobileNetV3's hard swish
    x = L.ReLU()(x * 0.5) + a  # Keras marks `x * 0.5` sparse
    gate = L.Conv2D(8, 1, activation="sigmoid")(keras.ops.mean(x, axis=(1, 2), keepdims=True))
    x = keras.ops.reshape(x * gate, (-1, 16 * 16 * 8))
    return keras.Model(inputs, L.Dense(10)(x), name="operators")


def test_operator_syntax_runs_in_int8(digits):
    qat, content, ops = _qat_int8(_operator_syntax(), digits)
    assert find_float_islands(content, qat) == []
    assert ops.count("QUANTIZE") == 1 and ops.count("DEQUANTIZE") == 1
    assert ops.count("MUL") == 4 and ops.count("ADD") == 2 and "MEAN" in ops
    ranges = [layer for layer in qat.layers if isinstance(layer, tc.quantization.QuantizeLayer)]
    # The input, `* (1 / 6)`, `a * ...`, `... + a`, the mean and `x * gate`; not the two ops
    # whose ReLU(6) TFLite fuses (`b + 3.0`, `x * 0.5`), nor the reshape.
    assert len(ranges) == 6
    assert _agreement(qat, content, digits) >= 0.99


def test_operations_next_to_float_layers_stay_float():
    inputs = keras.Input((4,))
    x = L.Dense(4, name="fc")(inputs) * 2.0
    model = keras.Model(inputs, L.Dense(2, name="head")(x))
    qat = tc.quantize_model(model, precision={"fc": "float", "head": "float"})
    assert not any(isinstance(layer, tc.quantization.QuantizeLayer) for layer in qat.layers)


def test_export_warns_and_names_the_layers_left_float(digits):
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, activation="relu")(inputs)
    x = L.Conv2D(8, 3, name="kept_float")(x)
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))
    qat = tc.quantize_model(model, precision={"kept_float": "float"})
    with pytest.warns(UserWarning, match=r"1 float island.*CONV_2D.*'kept_float \(Conv2D\)'"):
        content = tc.export_tflite(qat, mode="int8")
    islands = find_float_islands(content, qat)
    assert len(islands) == 1 and islands[0].ops[0] == "CONV_2D"
    assert islands[0].layers[0] == "kept_float (Conv2D)"  # the float MEAN after it comes next


def test_batch_norm_with_no_conv_before_runs_as_depthwise(digits):
    """DenseNet's BN -> ReLU -> Conv after a concatenation: one int8 DEPTHWISE_CONV_2D."""
    inputs = keras.Input((16, 16, 3))
    x = L.Concatenate()([L.Conv2D(8, 3, padding="same")(inputs), inputs])
    x = L.ReLU()(L.BatchNormalization(name="pre_bn")(x))
    x = L.Conv2D(8, 3, strides=2, use_bias=False)(x)
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))
    qat, content, ops = _qat_int8(model, digits)
    wrapper = qat.get_layer("quant_pre_bn")
    assert isinstance(wrapper.layer, L.DepthwiseConv2D) and wrapper.output_ranges is None
    assert find_float_islands(content, qat) == []
    assert ops.count("DEPTHWISE_CONV_2D") == 1 and "MUL" not in ops and "RELU" not in ops
    assert _agreement(qat, content, digits) >= 0.99


def test_depthwise_conv1d_folds_batch_norm_in_int8(digits):
    """A DepthwiseConv1D (per-tensor: the converter failed on its per-channel kernel) absorbs
    the BN after it, and the ReLU fuses."""
    inputs = keras.Input((8, 8))
    x = L.Conv1D(8, 3, padding="same")(inputs)
    x = L.DepthwiseConv1D(3, padding="same", use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling1D()(x)))
    keras.utils.set_random_seed(0)
    qat = compile_classifier(tc.quantize_model(model), learning_rate=3e-3)
    x, y = digits.x_train[:, :, :, 0], digits.y_train
    qat.fit(x[:320], y[:320], batch_size=32, epochs=1, verbose=0)
    assert not any(isinstance(layer, L.BatchNormalization) for layer in qat.layers)
    content = tc.export_tflite(qat, mode="int8")
    ops = [op.name for op in tc.TFLiteFile(content).ops]
    assert find_float_islands(content, qat) == [] and "RELU" not in ops
    x_test = digits.x_test[:, :, :, 0]
    keras_top = qat.predict(x_test, verbose=0).argmax(-1)
    assert np.mean(keras_top == tc.TFLiteModel(content).predict(x_test).argmax(-1)) >= 0.99


def test_a_chain_of_preprocessing_layers_runs_in_float_before_the_input_quantizer(digits):
    """EfficientNet's Rescaling -> Normalization -> Rescaling: float, then one QUANTIZE."""
    inputs = keras.Input((16, 16, 3))
    norm = L.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.1, 0.2, 0.3])
    x = L.Rescaling([2.0, 1.5, 1.0])(norm(L.Rescaling(1.0)(inputs)))
    x = L.Conv2D(8, 3, strides=2, activation="relu")(x)
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))
    qat, content, ops = _qat_int8(model, digits)
    quantizers = [layer for layer in qat.layers if isinstance(layer, tc.quantization.QuantizeLayer)]
    assert len(quantizers) == 1 and quantizers[0].input.name != qat.input.name
    assert find_float_islands(content, qat) == []
    assert ops.count("QUANTIZE") == 1 and ops.count("DEQUANTIZE") == 1
    assert _agreement(qat, content, digits) >= 0.99


def _max_output_steps(qat, content, x):
    """The largest |QAT logit - int8 logit|, in steps of the int8 output's scale."""
    info = tc.TFLiteFile(content)
    (last,) = [op for op in info.ops if op.outputs[0] in info.outputs]
    scale = info.tensors[last.inputs[0]].scale[0]
    diff = np.abs(qat.predict(x, verbose=0) - tc.TFLiteModel(content).predict(x))
    return float(diff.max() / scale)


def test_conv2d_transpose_folds_batch_norm_in_int8(digits):
    """Conv2DTranspose -> BN -> ReLU: one int8 TRANSPOSE_CONV with the BN in its weights and
    bias and the ReLU fused, within one output step of the QAT model."""
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = L.Conv2DTranspose(8, 3, strides=2, padding="same", use_bias=False, name="up")(x)
    x = L.ReLU()(L.BatchNormalization(name="up_bn")(x))
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))
    keras.utils.set_random_seed(0)
    qat = compile_classifier(tc.quantize_model(model), learning_rate=3e-3)
    qat.fit(np.repeat(digits.x_train[:160], 3, -1), digits.y_train[:160], batch_size=32, verbose=0)
    assert qat.get_layer("quant_up").batch_norm.name == "up_bn"
    assert not any(isinstance(layer, L.BatchNormalization) for layer in qat.layers)
    content = tc.export_tflite(qat, mode="int8")
    ops = [op.name for op in tc.TFLiteFile(content).ops]
    assert find_float_islands(content, qat) == []
    assert ops.count("QUANTIZE") == 1 and ops.count("DEQUANTIZE") == 1
    assert "TRANSPOSE_CONV" in ops and not {"DEPTHWISE_CONV_2D", "MUL", "RELU"} & set(ops)
    assert _max_output_steps(qat, content, np.repeat(digits.x_test, 3, -1)) <= 1.001


def test_a_linear_activation_takes_its_input_range():
    """MobileNetV3's head: logits Conv2D -> Flatten -> Activation(None). The identity gets no
    range of its own, which cost an int8 -> int8 QUANTIZE before the Flatten's RESHAPE."""
    inputs = keras.Input((4, 4, 3))
    x = L.GlobalAveragePooling2D(keepdims=True)(L.Conv2D(8, 3, activation="relu")(inputs))
    x = L.Activation(None, name="predictions")(L.Flatten()(L.Conv2D(10, 1, name="logits")(x)))
    qat = tc.quantize_model(keras.Model(inputs, x))
    qat.compile("adam", "mse")
    rng = np.random.default_rng(0)
    qat.fit(rng.uniform(size=(32, 4, 4, 3)), rng.normal(size=(32, 10)), verbose=0)
    ranged = [layer.name for layer in qat.layers if getattr(layer, "output_ranges", None)]
    assert ranged[-1] == "quant_logits"  # the logits' range is the model output's
    info = tc.TFLiteFile(tc.export_tflite(qat, mode="int8"))
    assert [op.name for op in info.ops].count("QUANTIZE") == 1  # the input's
