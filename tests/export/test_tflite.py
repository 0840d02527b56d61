"""export_tflite: every mode agrees with the Keras model on real data; bad input is refused."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress as tc
from tfcompress.export import TFLiteFile

# mode -> (minimum top-1 agreement, maximum |tflite - keras| / max |keras|) on MNIST-5k test.
TOLERANCES = {
    "float32": (1.0, 1e-5),
    "float16": (0.998, 2e-3),
    "dynamic": (0.995, 0.02),
    "int8": (0.98, 0.2),
    "int16x8": (0.995, 0.15),  # int8 weights dominate the error
}


def _export(model, mode, mnist, **kwargs):
    calibration = mnist.x_train[:200] if mode in ("int8", "int16x8") else None
    return tc.export_tflite(model, mode=mode, representative_data=calibration, **kwargs)


@pytest.mark.parametrize("mode", list(TOLERANCES))
@pytest.mark.parametrize("fixture", ["trained_lenet", "trained_cnn", "trained_mobilenet"])
def test_tflite_agrees_with_keras(mode, fixture, mnist, request):
    model = request.getfixturevalue(fixture)
    # int16x8 runs on reference kernels only (slow): 300 images suffice there.
    x = mnist.x_test[:300] if mode == "int16x8" else mnist.x_test
    expected = model.predict(x, verbose=0)
    got = tc.TFLiteModel(_export(model, mode, mnist)).predict(x)
    min_agreement, max_rel_error = TOLERANCES[mode]
    agreement = np.mean(got.argmax(-1) == expected.argmax(-1))
    rel_error = np.abs(got - expected).max() / np.abs(expected).max()
    assert agreement >= min_agreement, (mode, agreement)
    assert rel_error <= max_rel_error, (mode, rel_error)


def _weight_types(content, min_size=0):
    info = TFLiteFile(content)
    weights = [
        info.tensors[op.inputs[1]]
        for op in info.ops
        if op.name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
    ]
    return {w.dtype for w in weights if w.data.size >= min_size}


@pytest.mark.parametrize(
    "mode,weights",
    [("float32", {"float32"}), ("int8", {"int8"}), ("int16x8", {"int8"})],
)
def test_modes_store_the_expected_weight_types(mode, weights, trained_lenet, mnist):
    assert _weight_types(_export(trained_lenet, mode, mnist)) == weights


def test_dynamic_quantizes_weights_of_1024_elements_and_more(trained_lenet, mnist):
    content = _export(trained_lenet, "dynamic", mnist)
    assert _weight_types(content, min_size=1024) == {"int8"}
    assert _weight_types(content) == {"int8", "float32"}  # the 10x100 logits layer stays float


def test_float16_stores_half_weights(trained_lenet, mnist):
    info = TFLiteFile(_export(trained_lenet, "float16", mnist))
    halves = [t for t in info.tensors if t.is_constant and t.dtype == "float16"]
    assert sum(t.data.size for t in halves) >= trained_lenet.count_params() - 410


def test_int8_io(trained_lenet, mnist):
    content = _export(trained_lenet, "int8", mnist, io_type="int8")
    runner = tc.TFLiteModel(content)
    assert runner.input_dtype == np.int8 and runner.output_dtype == np.int8
    float_io = tc.TFLiteModel(_export(trained_lenet, "int8", mnist)).predict(mnist.x_test)
    int_io = runner.predict(mnist.x_test)
    assert np.mean(float_io.argmax(-1) == int_io.argmax(-1)) >= 0.99
    assert runner.run_batch(mnist.x_test[:3], raw=True).dtype == np.int8


def test_writes_file_atomically(trained_lenet, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    content = tc.export_tflite(trained_lenet, path)
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == ["model.tflite"]  # no temporary file left behind


def test_failed_export_keeps_existing_file(trained_lenet, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError):
        tc.export_tflite(trained_lenet, path, mode="int8", representative_data=np.zeros((4, 3)))
    assert path.read_bytes() == b"precious"


def test_subclassed_model_with_input_shape(digits):
    class TwoLayer(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(self.flatten(x))

    model = TwoLayer()
    model(digits.x_test[:1])
    content = tc.export_tflite(model, input_shape=(8, 8, 1))
    np.testing.assert_allclose(
        tc.TFLiteModel(content).predict(digits.x_test),
        model.predict(digits.x_test, verbose=0),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="input_shape"):
        tc.export_tflite(model)


def test_tf_data_and_generator_calibration(trained_lenet, mnist):
    dataset = tf.data.Dataset.from_tensor_slices(mnist.x_train[:50]).batch(1)
    from_dataset = tc.export_tflite(trained_lenet, mode="int8", representative_data=dataset)

    def generator():
        for x in mnist.x_train[:50]:
            yield [x[None]]

    from_generator = tc.export_tflite(trained_lenet, mode="int8", representative_data=generator)
    from_array = tc.export_tflite(
        trained_lenet, mode="int8", representative_data=mnist.x_train[:50]
    )
    assert from_dataset == from_generator == from_array


class TestBadInput:
    def test_unknown_mode(self, trained_lenet):
        with pytest.raises(ValueError, match=r"mode='int4'.*|.*'float32', 'float16'"):
            tc.export_tflite(trained_lenet, mode="int4")

    def test_int8_without_data(self, trained_lenet):
        with pytest.raises(ValueError, match="representative_data=None"):
            tc.export_tflite(trained_lenet, mode="int8")

    def test_bad_io_type(self, trained_lenet, mnist):
        with pytest.raises(ValueError, match="io_type='int8'"):
            tc.export_tflite(trained_lenet, mode="float32", io_type="int8")

    def test_model_never_built(self):
        model = keras.Sequential([keras.layers.Dense(3)])
        with pytest.raises(ValueError, match="never built"):
            tc.export_tflite(model)

    def test_not_a_model(self):
        with pytest.raises(TypeError, match="Received: model of type str"):
            tc.export_tflite("model.keras")

    def test_missing_folder(self, trained_lenet, tmp_path):
        path = tmp_path / "nope" / "m.tflite"
        with pytest.raises(FileNotFoundError, match="does not exist"):
            tc.export_tflite(trained_lenet, path)

    def test_calibration_data_of_wrong_shape(self, trained_lenet):
        with pytest.raises(ValueError, match=r"expected \(n, 28, 28, 1\).*\(10, 8, 8, 1\)"):
            tc.export_tflite(
                trained_lenet, mode="int8", representative_data=np.zeros((10, 8, 8, 1))
            )
