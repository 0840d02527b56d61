"""Bad input to `export_tflite` and `TFLiteModel`: clear errors or warnings, no quiet result."""

import os
import stat
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress as tc
from tfcompress.export.tflite import _check_quantized


@pytest.fixture(scope="module")
def mlp():
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="fc"), keras.layers.Dense(3, name="out")],
        name="mlp",
    )


@pytest.fixture(scope="module")
def int8_content(mlp):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    return tc.export_tflite(mlp, mode="int8", representative_data=x)


def _nan_batches():
    return ([np.full((1, 4), np.nan, "float32")] for _ in range(3))


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((0, 4), "float32"), r"`representative_data` is empty.*shape=\(0, 4\)"),
        (np.full((5, 4), np.nan, "float32"), r"`representative_data` must hold finite values"),
        (
            lambda: tf.data.Dataset.from_tensor_slices(np.zeros((0, 1, 4), "float32")),
            r"`representative_data` gave no samples",
        ),
        (
            lambda: tf.data.Dataset.from_tensor_slices(np.full((3, 1, 4), np.inf, "float32")),
            r"`representative_data` must hold finite values.*sample 0",
        ),
        (lambda: _nan_batches, r"`representative_data` must hold finite values.*sample 0"),
        (lambda: lambda: iter(()), r"`representative_data` gave no samples"),
    ],
)
def test_calibration_data_without_usable_samples_is_refused(mlp, mode, data, message):
    data = data() if callable(data) else data  # datasets and generators built here
    with pytest.raises(ValueError, match=message):
        tc.export_tflite(mlp, mode=mode, representative_data=data)


def test_an_int8_request_that_gave_float_weights_raises(mlp):
    with pytest.raises(ValueError, match=r"mode='int8' was asked for.*FULLY_CONNECTED"):
        _check_quantized(tc.export_tflite(mlp), "int8")


class _Sub(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc = keras.layers.Dense(3)

    def call(self, x):
        return self.fc(x)


def test_wrong_input_shape_of_a_subclassed_model_names_input_shape():
    model = _Sub(name="sub")
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(
        ValueError,
        match=r"`input_shape` does not fit model 'sub'.*expected axis -1 .* value 4.*"
        r"Received: input_shape=\(5,\)",
    ):
        tc.export_tflite(model, input_shape=(5,))
    assert tc.export_tflite(model, input_shape=(4,))[4:8] == b"TFL3"


@pytest.mark.parametrize("threads", [True, False, 1.0])
def test_num_threads_must_be_an_int_not_a_bool(int8_content, threads):
    with pytest.raises(ValueError, match=rf"Received: num_threads={threads!r}"):
        tc.TFLiteModel(int8_content, num_threads=threads)


def test_empty_model_bytes_name_model():
    with pytest.raises(ValueError, match=r"`model` is empty.*Received: model=b''"):
        tc.TFLiteModel(b"")


@pytest.mark.parametrize("key", ["num_threads", "backend"])
def test_kernel_options_may_not_repeat_the_model_arguments(int8_content, key):
    with pytest.raises(ValueError, match=rf"`kernel_options` must not hold \['{key}'\]"):
        tc.TFLiteModel(int8_content, use_tfcompress_kernels=True, kernel_options={key: 2})


def test_nan_inputs_warn_once_naming_x(int8_content):
    runner = tc.TFLiteModel(int8_content)
    x = np.zeros((4, 4), "float32")
    x[1, 2] = np.nan
    with pytest.warns(UserWarning, match=r"`x` holds NaN or inf.*1 non-finite"):
        runner.predict(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.predict(x)  # once per model
        runner.predict(np.ones((2, 4), "float32"))


def test_unscaled_integer_pixels_warn_once(int8_content):
    runner = tc.TFLiteModel(int8_content)
    pixels = np.arange(16, dtype="uint8").reshape(4, 4) * 16
    with pytest.warns(
        UserWarning, match=r"`x` is an integer array \(dtype uint8, values up to 240"
    ):
        runner.predict(pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.predict(pixels)  # once per model
        tc.TFLiteModel(int8_content).predict(np.ones((2, 4), "int64"))  # 0/1 values: fine


def test_an_exported_file_gets_the_umask_mode(mlp, tmp_path):
    old = os.umask(0o022)
    try:
        tc.export_tflite(mlp, tmp_path / "model.tflite")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "model.tflite").st_mode) == 0o644
