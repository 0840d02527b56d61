"""QAT models converted to int8 (and 4-bit weight) `.tflite` files agree with their Keras form."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.quantization import quantize_model

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _qat(model, data, scheme="default_8bit", epochs=1):
    keras.utils.set_random_seed(5)
    qat = compile_classifier(quantize_model(model, scheme=scheme), learning_rate=1e-4)
    qat.fit(data.x_train[:2000], data.y_train[:2000], epochs=epochs, batch_size=64, verbose=0)
    return qat


@pytest.fixture(scope="module")
def qat_cnn(trained_cnn, mnist):
    return _qat(trained_cnn, mnist)


@pytest.fixture(scope="module")
def qat_mobilenet(trained_mobilenet, mnist):
    return _qat(trained_mobilenet, mnist)


def _output_scale(info: TFLiteFile) -> float:
    """The int8 output's scale: the DEQUANTIZE at the end of a float-output model."""
    (op,) = [op for op in info.ops if op.outputs[0] in info.outputs]
    assert op.name == "DEQUANTIZE"
    return info.tensors[op.inputs[0]].scale[0]


def _check_int8_graph(info: TFLiteFile, weight_type: str = "int8") -> None:
    for op in info.ops:
        if op.name in WEIGHT_OPS:
            data, weight, bias = (info.tensors[i] for i in op.inputs[:3])
            assert (data.dtype, weight.dtype, bias.dtype) == ("int8", weight_type, "int32"), op
            assert info.tensors[op.outputs[0]].dtype == "int8", op
    names = [op.name for op in info.ops]
    # Only the float boundary converts: one QUANTIZE in, one DEQUANTIZE out.
    assert names.count("QUANTIZE") == 1 and names[0] == "QUANTIZE", names
    assert names.count("DEQUANTIZE") == 1 and names[-1] == "DEQUANTIZE", names


@pytest.mark.parametrize("name", ["qat_cnn", "qat_mobilenet"])
def test_int8_tflite_matches_qat_model(name, request, mnist):
    qat = request.getfixturevalue(name)
    content = export_tflite(qat, mode="int8")  # no representative data: QAT ranges
    info = TFLiteFile(content)
    _check_int8_graph(info)
    ops = {op.name for op in info.ops}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= ops
    if name == "qat_mobilenet":  # BN folded, ReLU6 fused: no MUL/ADD-of-BN or RELU6 ops left
        assert "DEPTHWISE_CONV_2D" in ops and not ops & {"MUL", "RELU6", "RELU"}
    keras_logits = qat.predict(mnist.x_test, verbose=0)
    tflite_logits = TFLiteModel(content).predict(mnist.x_test)
    agreement = np.mean(keras_logits.argmax(-1) == tflite_logits.argmax(-1))
    steps = np.abs(keras_logits - tflite_logits).max() / _output_scale(info)
    print(f"{name}: top-1 agreement {agreement:.4f}, max |logit diff| {steps:.1f} steps")
    assert agreement >= 0.99
    assert steps <= 4  # a step or two from integer requantization along the way


def test_int8_io(qat_cnn, mnist):
    content = export_tflite(qat_cnn, mode="int8", io_type="int8")
    info = TFLiteFile(content)
    assert info.tensors[info.inputs[0]].dtype == "int8"
    assert info.tensors[info.outputs[0]].dtype == "int8"
    assert "QUANTIZE" not in {op.name for op in info.ops}
    keras_pred = qat_cnn.predict(mnist.x_test[:300], verbose=0).argmax(-1)
    assert np.mean(TFLiteModel(content).predict(mnist.x_test[:300]).argmax(-1) == keras_pred) > 0.99


def test_4bit_weights_are_packed_int4_and_match_keras(trained_cnn, mnist):
    qat = _qat(trained_cnn, mnist, scheme="default_4bit")
    content = export_tflite(qat, mode="int8")
    info = TFLiteFile(content)
    _check_int8_graph(info, weight_type="int4")
    conv1 = next(op for op in info.ops if op.name == "CONV_2D")
    weight = info.tensors[conv1.inputs[1]]  # [out, kh, kw, in], per output channel
    assert weight.data.min() >= -7 and weight.data.max() <= 7
    assert weight.stored_bytes == (weight.data.size + 1) // 2  # two values per byte
    dequantized = weight.data * np.asarray(weight.scale)[:, None, None, None]
    wrapper = qat.get_layer("quant_conv1")
    (kernel,) = wrapper.quantized_weights().values()
    np.testing.assert_allclose(dequantized, np.transpose(kernel.numpy(), (3, 0, 1, 2)), atol=1e-6)
    keras_pred = qat.predict(mnist.x_test, verbose=0).argmax(-1)
    assert np.mean(TFLiteModel(content).predict(mnist.x_test).argmax(-1) == keras_pred) >= 0.99
    summary = tc.report(tflite=content).summary
    packed, container = summary["tflite_weight_bytes"], summary["tflite_weight_container_bytes"]
    print(f"4-bit CNN weights: {packed} bytes packed, {container} in int8 containers")
    assert 1.8 < container / packed < 2.0  # the int32 biases do not pack


def test_qat_model_needs_int8_mode(qat_cnn):
    with pytest.raises(ValueError, match="mode='int8'.*strip_quantization.*mode='float16'"):
        export_tflite(qat_cnn, mode="float16")


def test_float_model_still_needs_representative_data(trained_cnn):
    with pytest.raises(ValueError, match="representative_data"):
        export_tflite(trained_cnn, mode="int8")


def test_report_rows_of_a_qat_model_carry_the_float_layer_names(qat_cnn):
    ops = tc.report(tflite=export_tflite(qat_cnn, mode="int8")).ops
    names = [r.name for r in ops if r.kind in WEIGHT_OPS]
    assert names == ["conv1", "conv2", "fc1", "logits"]
