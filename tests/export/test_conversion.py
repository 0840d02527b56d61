"""How `export_tflite` converts: Keras' LiteRT path (an ExportArchive SavedModel and
`TFLiteConverter.from_saved_model`), builtin ops only, and converter failures as clear errors."""

import logging
import os
import tempfile
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import plain_convert

import tfcompress as tc
from tfcompress.export import ConversionError, TFLiteFile
from tfcompress.export import tflite as tflite_module

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 8, 8, 1)).astype("float32")


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, name="logits"),
        ],
        name="small",
    )


def _export(model, mode, **kwargs):
    calibration = X if mode in ("int8", "int16x8") else None
    return tc.export_tflite(model, mode=mode, representative_data=calibration, **kwargs)


def _plain_from_saved_model(model, mode, directory):
    """The mode the documented way: `model.export` to a SavedModel, `from_saved_model`."""
    model.export(directory, format="tf_saved_model", verbose=False)
    return plain_convert(tf.lite.TFLiteConverter.from_saved_model(directory), mode, X)


@pytest.mark.parametrize("mode", MODES)
def test_equals_the_plain_from_saved_model_conversion(mode, small_cnn, tmp_path):
    ours = tc.TFLiteModel(_export(small_cnn, mode), reference_kernels=True)
    plain = _plain_from_saved_model(small_cnn, mode, str(tmp_path / "saved"))
    plain = tc.TFLiteModel(plain, reference_kernels=True)
    np.testing.assert_array_equal(ours.predict(X), plain.predict(X))


def test_no_deprecated_from_concrete_functions(small_cnn, caplog, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("from_concrete_functions was called")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_concrete_functions", refuse)
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for mode in ("float32", "int8"):
            _export(small_cnn, mode)
        logging.getLogger("absl").warning("conversion done")  # the converter's logger is seen
    said = [r.getMessage() for r in caplog.records] + [str(w.message) for w in warned]
    assert "conversion done" in said
    assert not [text for text in said if "trackable_obj" in text or "deprecated" in text]


def test_temporary_folders_are_removed_after_success_and_failure(small_cnn, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen = []
    convert = tflite_module.convert_saved_model

    def watched(*args, **kwargs):
        seen.append(_ours(scratch))
        return convert(*args, **kwargs)

    monkeypatch.setattr(tflite_module, "convert_saved_model", watched)
    _export(small_cnn, "float32")
    with pytest.raises(tc.ConversionError):  # also at the top level
        tc.export_tflite(_inverter())
    assert tc.ConversionError is ConversionError
    assert [len(folders) for folders in seen] == [1, 1]  # the SavedModel's, while converting
    assert _ours(scratch) == []


def _ours(folder):
    """Our temporary folders in `folder` (autograph leaves its generated modules there too)."""
    return [name for name in os.listdir(folder) if name.startswith("tfcompress-")]


def _inverter():
    x = keras.Input((3, 3))
    y = keras.layers.Lambda(lambda t: keras.ops.inv(t), name="invert")(x)
    return keras.Model(x, keras.layers.Flatten()(y), name="inverter")


def test_an_op_without_builtin_is_named_with_its_layer():
    with pytest.raises(
        ConversionError, match=r"'inverter'.*: MatrixInverse \(layer 'invert'\).*SELECT_TF_OPS"
    ):
        tc.export_tflite(_inverter())


def test_calibration_without_loops_stays_in_process(small_cnn, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(tflite_module, "convert_in_child", refuse)
    assert TFLiteFile(_export(small_cnn, "int8")).ops


def test_lookup_tables_are_saved_with_the_model():
    x = keras.Input((3,), dtype="string")
    model = keras.Model(x, keras.layers.StringLookup(vocabulary=["a", "b", "c"])(x))
    words = np.array([["a", "b", "z"], ["c", "c", "a"]])
    interpreter = tf.lite.Interpreter(model_content=tc.export_tflite(model))
    (given,), (got,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(given["index"], words.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], words.astype(object))
    interpreter.invoke()
    expected = model(tf.constant(words)).numpy()
    np.testing.assert_array_equal(interpreter.get_tensor(got["index"]), expected)
    assert expected.tolist() == [[1, 2, 0], [3, 3, 1]]


def test_inputs_and_outputs_keep_their_positions():
    """The SavedModel importer lists them in its signature map's order; the file must not."""
    inputs = [keras.Input((k,), name=f"in{k}") for k in range(1, 13)]
    joined = keras.layers.Concatenate()(inputs)
    model = keras.Model(
        inputs, [keras.layers.Dense(j, name=f"out{j}")(joined) for j in range(1, 12)]
    )
    interpreter = tf.lite.Interpreter(model_content=tc.export_tflite(model))
    interpreter.allocate_tensors()
    given, got = interpreter.get_input_details(), interpreter.get_output_details()
    assert [int(d["shape_signature"][1]) for d in given] == list(range(1, 13))
    assert [int(d["shape_signature"][1]) for d in got] == list(range(1, 12))
    x = [RNG.normal(size=(1, k)).astype("float32") for k in range(1, 13)]
    for detail, value in zip(given, x):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    for detail, expected in zip(got, model.predict(x, verbose=0)):
        np.testing.assert_allclose(interpreter.get_tensor(detail["index"]), expected, atol=1e-5)


def _gru(batch_size=None):
    keras.utils.set_random_seed(5)
    return keras.Sequential(
        [
            keras.Input((5, 3), batch_size=batch_size),
            keras.layers.GRU(4, name="gru"),
            keras.layers.Dense(2, name="out"),
        ],
        name="recurrent",
    )


SEQUENCES = RNG.normal(size=(24, 5, 3)).astype("float32")


def test_a_recurrent_layer_with_a_dynamic_batch_says_to_fix_it():
    with pytest.raises(
        ConversionError, match=r"'recurrent' has a loop \(layer 'gru'\).*`batch_size=1`"
    ):
        tc.export_tflite(_gru())
    # The remedy: the batch size the input declares is the one converted.
    model = _gru(batch_size=1)
    got = tc.TFLiteModel(tc.export_tflite(model)).predict(SEQUENCES, batch_size=1)
    np.testing.assert_allclose(got, model.predict(SEQUENCES, verbose=0), atol=1e-5)


@pytest.mark.slow  # each starts a Python process that imports TensorFlow
@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_a_calibrator_crash_is_an_error_pointing_to_qat(mode):
    """TF 2.21's calibrator dies with SIGSEGV on a GRU; that used to end the test process."""
    with pytest.raises(
        ConversionError,
        match=rf"crashed \(SIGSEGV.*'recurrent' for mode='{mode}'.*recurrent layers \(gru\)"
        r".*tfcompress\.quantize_model\(model\)",
    ):
        tc.export_tflite(_gru(), mode=mode, representative_data=SEQUENCES, batch_size=1)


def test_qat_exports_the_recurrent_model_calibration_crashes_on():
    """The remedy the crash error gives, step by step."""
    qat = tc.quantize_model(_gru(batch_size=1))
    qat.compile("adam", "mse")
    qat.fit(SEQUENCES, RNG.normal(size=(24, 2)), batch_size=1, epochs=1, verbose=0)
    content = tc.export_tflite(qat, mode="int8", batch_size=1)
    info = TFLiteFile(content)
    int8 = {op.name for op in info.ops if info.tensors[op.outputs[0]].dtype == "int8"}
    assert "FULLY_CONNECTED" in int8
    expected = qat.predict(SEQUENCES, verbose=0, batch_size=1)
    got = tc.TFLiteModel(content).predict(SEQUENCES, batch_size=1)
    assert np.abs(got - expected).max() <= 0.06 * np.abs(expected).max()
