"""A concat's inputs and output share one range, so the int8 file has no requantize."""

import keras
import numpy as np
import pytest

import tfcompress as tc
from tfcompress.quantization import QuantizeWrapper
from tfcompress.quantization.shared_ranges import tie_shared_ranges

L = keras.layers


def _dense_block() -> keras.Model:
    """DenseNet's pattern: a running concatenation read by the next BN and the next concat,
    with a max pool (one scale in and out) between two of them."""
    inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(momentum=0.5, name="stem_bn")(x))
    for i in range(3):
        y = L.ReLU()(L.BatchNormalization(momentum=0.5, name=f"bn{i}")(x))
        y = L.Conv2D(4, 3, padding="same", use_bias=False, name=f"conv{i}")(y)
        x = L.Concatenate(name=f"cat{i}")([x, y])
        if i == 1:
            x = L.MaxPooling2D(name="pool")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10, name="logits")(x))


def _requantizes(content: bytes) -> list[str]:
    info = tc.TFLiteFile(content)
    return [
        info.tensors[op.outputs[0]].name
        for op in info.ops
        if op.name == "QUANTIZE" and info.tensors[op.inputs[0]].dtype == "int8"
    ]


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 3), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    qat = tc.quantize_model(_dense_block())
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return qat, x


def _ranges(model, name):
    ranges = model.get_layer(name).output_ranges
    return float(ranges["min"].numpy()), float(ranges["max"].numpy())


def test_groups_lead_with_the_last_concat():
    qat = tc.quantize_model(_dense_block())
    # Tied again (idempotent): the leader is the last concat, the members are the other
    # concats, the stem's ReLU (the running concatenation's start) and the convs it reads.
    (group,) = tie_shared_ranges(qat)
    assert group == [
        "quant_cat2",
        *sorted(
            ["quant_cat0", "quant_cat1", "quant_stem_relu"] + [f"quant_conv{i}" for i in range(3)]
        ),
    ]


def test_int8_file_has_no_requantize_and_agrees(trained):
    qat, x = trained
    leader = _ranges(qat, "quant_cat2")
    for name in ("quant_cat0", "quant_cat1", "quant_stem_relu", "quant_conv0"):
        assert _ranges(qat, name) == leader  # the range used, saved in the member's own
    content = tc.export_tflite(qat, mode="int8")
    assert _requantizes(content) == []
    info = tc.TFLiteFile(content)
    (last,) = [op for op in info.ops if op.outputs[0] in info.outputs]
    step = info.tensors[last.inputs[0]].scale[0]
    keras_logits = qat.predict(x, verbose=0)
    int8_logits = tc.TFLiteModel(content).predict(x)
    assert np.percentile(np.abs(keras_logits - int8_logits) / step, 99) <= 2


def test_untied_ranges_give_requantizes(trained):
    """The control: the same model with each member back on a range of its own."""
    qat, _ = trained
    untied = keras.models.clone_model(qat)
    untied.set_weights(qat.get_weights())
    for layer in untied.layers:
        if isinstance(layer, QuantizeWrapper):
            layer.output_tie.leader = None
    for name, value in (("quant_stem_relu", 0.5), ("quant_cat0", 0.7)):
        untied.get_layer(name).output_ranges["max"].assign(value)  # as their own EMA would
    assert len(_requantizes(tc.export_tflite(untied, mode="int8"))) >= 2


def test_keras_round_trip_keeps_the_shared_range(trained, tmp_path):
    qat, x = trained
    path = tmp_path / "qat.keras"
    qat.save(path)
    with tc.quantize_scope():
        loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), qat.predict(x, verbose=0), atol=1e-6)
    assert _ranges(loaded, "quant_cat0") == _ranges(qat, "quant_cat2")
