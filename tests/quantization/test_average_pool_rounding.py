"""An average pool rounds its means to its input's int8 grid in QAT, as TFLite's does.

TFLite's int8 AVERAGE_POOL_2D writes its input's scale and rounds each mean to
it. Left unquantized in QAT (a pass-through), the Keras pool kept the exact
mean, a quarter of an input step from the int8 file's on average, and the Add
after it rounded the difference into a one-step error on a seventh of its
outputs (`_normal_cell`). Its output range now follows its input's. NASNetMobile
(40 pools into Adds) after 4 steps: logits median 4 -> 3, p99 14 -> 13 output
steps from QAT Keras', top-1 agreement 87% -> 90.5%; the rest is every op's
one-step roundings compounding over the cells (each op alone is within 1 step).
The kernel rounds a mean halfway between two int8 values away from int8 zero,
which QAT now does too (`pool_rounding.py`).
"""

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.export.float_islands import find_float_islands
from tfcompress.quantization.shared_ranges import tie_shared_ranges

L = keras.layers


def _pool(name: str) -> L.AveragePooling2D:
    return L.AveragePooling2D(3, strides=1, padding="same", name=name)


def _normal_cell() -> keras.Model:
    """NASNet's normal-cell pattern: 3x3 SAME average pools into Adds, the Adds concatenated,
    and an adjust block's pad, crop and strided 1x1 pool before a 1x1 conv."""
    inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = L.BatchNormalization(momentum=0.5, name="stem_bn")(x)
    h = L.Conv2D(8, 1, use_bias=False, name="conv")(L.ReLU(name="relu")(x))
    h = L.BatchNormalization(momentum=0.5, name="bn")(h)
    a = L.Add(name="add_a")([_pool("pool_h")(h), x])
    b = L.Add(name="add_b")([_pool("pool_x")(x), h])
    p = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(L.ReLU(name="relu_p")(x))
    p = L.Cropping2D(((1, 0), (1, 0)), name="crop")(p)
    p = L.AveragePooling2D(1, strides=2, name="pool_p")(p)
    p = L.UpSampling2D(2, name="up")(L.Conv2D(8, 1, use_bias=False, name="adjust")(p))
    return keras.Model(inputs, L.Concatenate(name="cat")([a, b, p]))


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 3), dtype=np.float32)
    qat = tc.quantize_model(_normal_cell())
    qat.compile("adam", "mse")
    qat.fit(x, rng.normal(size=(64, 6, 6, 24)), batch_size=16, epochs=1, verbose=0)
    return qat, x


def _range(model: keras.Model, name: str) -> tuple[float, float]:
    ranges = model.get_layer(name).output_tie.leader or model.get_layer(name).output_ranges
    return float(ranges["min"].numpy()), float(ranges["max"].numpy())


def test_pools_follow_their_inputs_range(trained):
    qat, _ = trained
    tied = tie_shared_ranges(qat)
    assert ["quant_conv", "quant_pool_h"] in tied
    assert ["quant_stem", "quant_pool_x"] in tied
    assert _range(qat, "quant_pool_h") == _range(qat, "quant_conv")
    assert _range(qat, "quant_pool_x") == _range(qat, "quant_stem")
    assert _range(qat, "quant_pool_p") == _range(qat, "quant_relu_p")
    # The saved range is the one used (the leader copies it in as it moves).
    ranges = qat.get_layer("quant_pool_h").output_ranges
    assert float(ranges["max"].numpy()) == _range(qat, "quant_conv")[1]


def test_int8_file_rounds_the_pools_as_keras_does(trained):
    qat, x = trained
    content = tc.export_tflite(qat, mode="int8")
    info = tc.TFLiteFile(content)
    requantized = [
        op
        for op in info.ops
        if op.name == "QUANTIZE" and info.tensors[op.inputs[0]].dtype == "int8"
    ]
    assert requantized == []
    (last,) = [op for op in info.ops if op.outputs[0] in info.outputs]
    step = info.tensors[last.inputs[0]].scale[0]
    steps = np.abs(qat.predict(x, verbose=0) - tc.TFLiteModel(content).predict(x)) / step
    print(f"mean {steps.mean():.3f} steps, {np.mean(steps > 0.5):.3f} off, max {steps.max():.2f}")
    # Measured: mean 0.001 steps, 0.1% of outputs one step off, max 1. Halves rounded up
    # (where 4 or 6 cells are averaged at the border): 1.2% off. Unrounded pools: 14.3%, max 2.
    assert np.mean(steps) < 0.01
    assert np.mean(steps > 0.5) < 0.01
    assert steps.max() <= 1.01


def test_a_pool_reading_a_shared_pad_stays_unrounded():
    """NASNet's reduction cell: one PAD read by a 3x3 average pool and two max pools. Rounded
    there, the converter left the Adds after the max pools in float (2 islands per cell)."""
    inputs = keras.Input((12, 12, 3))
    x = L.BatchNormalization(momentum=0.5, name="bn")(L.Conv2D(8, 3, use_bias=False)(inputs))
    h3 = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
    pooled = L.AveragePooling2D(3, strides=2, name="pool")(h3)
    maxed = L.MaxPooling2D(3, strides=2, name="max")(h3)
    branch = L.Conv2D(8, 3, strides=2, padding="same", name="branch")(L.ReLU()(x))
    y = L.Concatenate()([L.Add()([maxed, branch]), L.Add()([pooled, branch])])
    qat = tc.quantize_model(keras.Model(inputs, y))
    assert type(qat.get_layer("pool")) is L.AveragePooling2D  # not wrapped: no range
    assert find_float_islands(tc.export_tflite(qat, mode="int8"), qat) == []


def test_halves_round_away_from_int8_zero_as_the_kernel_does():
    """A 2x2 pool's mean is a half on a quarter of its windows; TFLite rounds those away from
    int8 zero, fake quantization up (or, by float rounding, down): `pool_rounding.py`."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    pooled = L.AveragePooling2D(2, name="pool")(L.Conv2D(8, 3, padding="same")(inputs))
    qat = tc.quantize_model(keras.Model(inputs, pooled))
    x = np.random.default_rng(0).normal(size=(64, 8, 8, 4)).astype("float32")
    qat.compile("sgd", "mse")
    qat.fit(x, np.zeros((64, 4, 4, 8)), batch_size=16, epochs=1, verbose=0)
    content = tc.export_tflite(qat, mode="int8")
    info = tc.TFLiteFile(content)
    # The export traces the pool plainly: no float op computes the rounding in the file.
    assert [op.name for op in info.ops] == ["QUANTIZE", "CONV_2D", "AVERAGE_POOL_2D", "DEQUANTIZE"]
    step = info.tensors[info.ops[-1].inputs[0]].scale[0]
    int8 = tc.TFLiteModel(content, reference_kernels=True).predict(x)
    steps = np.abs(qat.predict(x, verbose=0) - int8) / step
    print(f"{np.mean(steps > 0.5):.4f} of the means off, max {steps.max():.2f} steps")
    # Measured: 0.3% one step off (the conv's own roundings); halves rounded up: 12%.
    assert np.mean(steps > 0.5) < 0.02
    assert steps.max() <= 1.01
