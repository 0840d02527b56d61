"""The QAT column of the coverage matrix: keras.applications models give all-int8 `.tflite`s.

Each model (`weights=None`, its smallest input, 10 classes) is quantized with
`quantize_model`, trained for a few steps on MNIST digits as colour images, and
exported with `mode="int8"`: the file must have no float island, no
QUANTIZE from float nor DEQUANTIZE but at its input and output (an int8 -> int8
requantize is allowed), and its top-1 class must agree with the QAT Keras
model's on >= 99% of held-out digits.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import FULL_MATRIX

import tfcompress as tc
from tfcompress.export.float_islands import find_float_islands

A = keras.applications
SLOW = pytest.mark.slow

# name: (constructor, input side, extra arguments)
APPLICATIONS = {
    "MobileNetV2": (A.MobileNetV2, 32, {"alpha": 0.35}),
    "MobileNetV3Small": (A.MobileNetV3Small, 32, {"alpha": 0.75}),
    "EfficientNetB0": (A.EfficientNetB0, 32, {}),
    "ResNet50": (A.ResNet50, 32, {}),
    "DenseNet121": (A.DenseNet121, 32, {}),
    "Xception": (A.Xception, 71, {}),
    "NASNetMobile": (A.NASNetMobile, 32, {}),
}


def _images(x, side):
    """MNIST digits resized to `side` x `side`, in three channels."""
    return np.repeat(tf.image.resize(x, (side, side)).numpy(), 3, axis=-1)


# All-int8, but after 4 steps on 64 digits these agree with their int8 file on fewer digits
# (measured). EfficientNetB0's QAT logits are then the same for every input (spread across
# inputs 7e-8, all within one output step, 0.086, of zero): both Keras and the int8 file
# output a constant, and top-1 is decided by ties and one-step roundings, not by the model.
# ResNet50's and DenseNet121's vary, but their median top-1 margin is one output step
# (0.04) and zero, and the int8 file is on average within one step (0.026, 0.008): the
# classes are not yet apart by more than int8 rounding. A fair check needs trained models.
AGREEMENT_GAPS = {"EfficientNetB0": "0%", "ResNet50": "82%", "DenseNet121": "51.5%"}


# Each takes one to several minutes on 2 cores (cloning, tracing, conversion): CI runs
# MobileNetV3Small (operator syntax, squeeze-excite, hard-swish); the rest need
# TFCOMPRESS_FULL_MATRIX=1.
CI = ("MobileNetV3Small",)


@SLOW
@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=() if name in CI else FULL_MATRIX) for name in APPLICATIONS],
)
def test_qat_gives_all_int8_and_agrees(name, mnist):
    build, side, kwargs = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    model = build(
        weights=None,
        input_shape=(side, side, 3),
        classes=10,
        classifier_activation=None,
        **kwargs,
    )
    qat = tc.quantize_model(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = _images(mnist.x_train[:64], side)
    qat.fit(x, mnist.y_train[:64], batch_size=16, epochs=1, verbose=0)
    content = tc.export_tflite(qat, mode="int8")
    info = tc.TFLiteFile(content)
    assert find_float_islands(content, qat) == []
    from_float = [op for op in info.ops if info.tensors[op.inputs[0]].dtype == "float32"]
    assert [op.name for op in from_float if op.name == "QUANTIZE"] == ["QUANTIZE"]  # the input's
    assert [op.name for op in info.ops].count("DEQUANTIZE") == 1  # the output's
    if name in AGREEMENT_GAPS:
        pytest.xfail(f"top-1 agreement with the int8 file: {AGREEMENT_GAPS[name]}")
    x_test = _images(mnist.x_test[:200], side)
    keras_top = qat.predict(x_test, verbose=0).argmax(-1)
    tflite_top = tc.TFLiteModel(content).predict(x_test).argmax(-1)
    assert np.mean(keras_top == tflite_top) >= 0.99
