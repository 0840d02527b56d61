"""A model the default interpreter runs only through XNNPACK still runs with our kernels on.

`Convolution2DTransposeBias` is MediaPipe's custom transposed convolution (segmentation
models use it): no builtin kernel resolves it, the default XNNPACK delegate runs it. Our
delegate has every node's own kernel propagate shapes, which that op cannot, so
`TFLiteModel` lets our kernels step aside for such a model rather than break it.
"""

from __future__ import annotations

import struct
import warnings

import flatbuffers
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.export import TFLiteModel
from tfcompress.export.flatbuffer import CUSTOM, custom_op_codes
from tfcompress.kernels import KernelDelegate

schema = pytest.importorskip("tensorflow.lite.python.schema_py_generated")

TRANSPOSE_CONV = 67  # BuiltinOperator
SAME = 1  # TfLitePadding


def _float_model() -> bytes:
    """Float conv 3x3 -> transposed conv 3x3 stride 2 with a bias, batch 1."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3), batch_size=1),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(
                6, 3, strides=2, padding="same", bias_initializer="random_normal"
            ),
        ]
    )
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _as_custom_op(content: bytes) -> bytes:
    """`content` with its TRANSPOSE_CONV rewritten as the custom `Convolution2DTransposeBias`:
    inputs (input, weights [out, h, w, in], bias) and, as custom options, the
    `TfLiteTransposeConvParams` POD (padding, stride_width, stride_height as int32)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    (op,) = [
        op
        for op in model.subgraphs[0].operators
        if model.operatorCodes[op.opcodeIndex].builtinCode == TRANSPOSE_CONV
    ]
    options = op.builtinOptions
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = CUSTOM
    code.customCode = "Convolution2DTransposeBias"
    code.version = 1
    model.operatorCodes.append(code)
    op.opcodeIndex = len(model.operatorCodes) - 1
    output_shape, weights, data, bias = op.inputs  # TRANSPOSE_CONV's order
    op.inputs = [data, weights, bias]
    assert options.padding == 0  # SAME in the schema's Padding enum
    op.customOptions = list(struct.pack("<3i", SAME, options.strideW, options.strideH))
    op.builtinOptionsType, op.builtinOptions = 0, None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def models() -> tuple[bytes, bytes]:
    """(the converter's model with TRANSPOSE_CONV, the same with the custom op)."""
    content = _float_model()
    return content, _as_custom_op(content)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(4).normal(size=(5, 8, 8, 3)).astype("float32")


def test_the_custom_op_model_needs_xnnpack(models: tuple[bytes, bytes], x: np.ndarray) -> None:
    builtin, custom = models
    assert custom_op_codes(custom) == ["Convolution2DTransposeBias"]
    assert custom_op_codes(builtin) == []
    # XNNPACK runs the custom op as it runs the builtin transposed convolution.
    np.testing.assert_array_equal(TFLiteModel(custom).predict(x), TFLiteModel(builtin).predict(x))
    with pytest.raises(RuntimeError, match="unresolved custom op: Convolution2DTransposeBias"):
        TFLiteModel(custom, use_xnnpack=False)


@pytest.mark.parametrize("backend", ["litert", "tf"])
@pytest.mark.parametrize("how", ["shortcut", "delegates"])
def test_our_kernels_never_break_it(
    models: tuple[bytes, bytes], x: np.ndarray, backend: str, how: str
) -> None:
    _, custom = models
    expected = TFLiteModel(custom, backend=backend).predict(x)
    if how == "shortcut":
        kwargs = {"use_tfcompress_kernels": True}
    else:
        kwargs = {"delegates": [KernelDelegate(backend=backend)]}
    with pytest.warns(UserWarning, match=r"step aside.*\['Convolution2DTransposeBias'\]"):
        model = TFLiteModel(custom, backend=backend, **kwargs)
    np.testing.assert_array_equal(model.predict(x), expected)
    assert isinstance(model.kernels, KernelDelegate)
    assert model.delegates == []
    assert model.kernels.counters()["nodes_claimed"] == 0


def test_other_models_keep_our_kernels(models: tuple[bytes, bytes], x: np.ndarray) -> None:
    """A float model without custom ops: no warning, our delegate stays applied."""
    builtin, _ = models
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = TFLiteModel(builtin, use_tfcompress_kernels=True)
    assert model.delegates == [model.kernels]
    np.testing.assert_array_equal(model.predict(x), TFLiteModel(builtin).predict(x))
