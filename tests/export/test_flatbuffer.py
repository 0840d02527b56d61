"""TFLiteFile: our flatbuffer reader agrees with the interpreter and the official schema."""

import numpy as np
import pytest

import tfcompress as tc
from tfcompress.export.flatbuffer import BUILTIN_OPS, TENSOR_TYPES, TFLiteFile


@pytest.fixture(scope="module")
def int8_model(trained_cnn, mnist):
    return tc.export_tflite(trained_cnn, mode="int8", representative_data=mnist.x_train[:100])


def test_enums_match_the_official_schema():
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    for code, name in BUILTIN_OPS.items():
        assert getattr(schema.BuiltinOperator, name) == code
    for code, (name, _) in TENSOR_TYPES.items():
        assert getattr(schema.TensorType, name.upper()) == code


def test_tensors_agree_with_interpreter(int8_model):
    from ai_edge_litert.interpreter import Interpreter

    info = TFLiteFile(int8_model)
    interpreter = Interpreter(model_content=int8_model)
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    constants = [t for t in info.tensors if t.is_constant]
    assert constants
    for tensor in info.tensors:
        if tensor.index not in details:
            continue
        d = details[tensor.index]
        assert tensor.name == d["name"]
        assert np.dtype(tensor.dtype) == d["dtype"]
        if tensor.scale:
            np.testing.assert_allclose(tensor.scale, d["quantization_parameters"]["scales"])
    for tensor in constants:
        np.testing.assert_array_equal(tensor.data, interpreter.get_tensor(tensor.index))


def test_int8_model_ops_and_types(int8_model):
    info = TFLiteFile(int8_model)
    names = [op.name for op in info.ops]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    for op in info.ops:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            assert info.tensors[op.inputs[0]].dtype == "int8"
            assert info.tensors[op.inputs[1]].dtype == "int8"
            assert info.tensors[op.inputs[2]].dtype == "int32"
    conv = next(op for op in info.ops if op.name == "CONV_2D")
    weight = info.tensors[conv.inputs[1]]
    assert len(weight.scale) == weight.shape[0]  # per-channel weights


def test_rejects_other_files():
    with pytest.raises(ValueError, match="TFL3"):
        TFLiteFile(b"PK\x03\x04 not a flatbuffer")
