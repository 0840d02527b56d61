"""`export_tflite`: Keras model -> `.tflite` bytes in every common quantization mode."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tfcompress.export.converter import (
    ConversionError,
    Samples,
    convert_saved_model,
    failure_message,
    known_failure,
    write_saved_model,
)
from tfcompress.export.flatbuffer import TFLiteFile
from tfcompress.export.float_islands import warn_float_islands
from tfcompress.export.isolated import convert_in_child
from tfcompress.quantization.pool_rounding import for_export
from tfcompress.utils.io import atomic_write_bytes, check_output_path
from tfcompress.utils.surgery import collect, is_graph_model
from tfcompress.utils.validation import (
    check_built,
    check_samples,
    layer_names,
    model_input_shapes,
)

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
_WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
_IO_TYPES = {"int8": ("float32", "int8"), "int16x8": ("float32", "int16")}
_LOOP_OPS = {"While", "StatelessWhile"}

RepresentativeData = np.ndarray | Callable[[], Iterable] | tf.data.Dataset


def _op_types(function: tf.types.experimental.GenericFunction) -> set[str]:
    """The op types of the traced `function`, those of the functions it calls included."""
    graph = function.get_concrete_function().graph.as_graph_def()
    called = (node.op for f in graph.library.function for node in f.node_def)
    return {node.op for node in graph.node} | set(called)


def _serving_function(model: keras.Model, shapes: list[tuple], dtypes: list, batches: list):
    """`model` called in inference mode as a `tf.function`, traced on the input signature."""
    signature = [
        tf.TensorSpec((batch, *shape), dtype, name=f"input_{i}")
        for i, (shape, dtype, batch) in enumerate(zip(shapes, dtypes, batches))
    ]

    @tf.function(input_signature=signature)
    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    with for_export():  # QAT's average pools as the converter reads them
        serve.get_concrete_function()
    return serve


def _core_message(err: Exception) -> str:
    """The message Keras highlights inside a traced call's error (else its last error line)."""
    text = str(err)
    highlighted = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.DOTALL)
    if highlighted:
        return highlighted.group(1).strip()[:300]
    lines = [line.strip() for line in text.splitlines() if "Error" in line]
    return (lines[-1] if lines else type(err).__name__)[:300]


def _traced(model: keras.Model, shapes: list[tuple], dtypes: list, batches: list, input_shape):
    """`_serving_function`, with a call that fails on the given `input_shape` reported as a
    wrong `input_shape` (instead of the traceback from deep inside the model)."""
    try:
        return _serving_function(model, shapes, dtypes, batches)
    except (ValueError, TypeError) as err:
        if input_shape is None:
            raise
        built = model.get_build_config() or {}
        known = f" (it was built on inputs of shape {built['input_shape']})" if built else ""
        raise ValueError(
            f"`input_shape` does not fit model {model.name!r}{known}: calling it on samples "
            f"of that shape failed ({_core_message(err)}). "
            f"Received: input_shape={tuple(input_shape)!r}"
        ) from err


def _input_dtypes(model: keras.Model, count: int) -> list:
    """Each input's dtype (integer token ids stay integer); float32 when unknown."""
    inputs = model.inputs if is_graph_model(model) else None  # none known for a subclassed one
    if not inputs or len(inputs) != count:
        return [tf.float32] * count
    return [tf.as_dtype(t.dtype) for t in inputs]


def _batch_sizes(model: keras.Model, count: int, batch_size: int | None) -> list:
    """Each input's batch size: `batch_size` if given, else the one the model's input
    declares (`keras.Input(..., batch_size=1)`), else None (dynamic)."""
    inputs = model.inputs if is_graph_model(model) else None
    if batch_size is not None or not inputs or len(inputs) != count:
        return [batch_size] * count
    return [t.shape[0] for t in inputs]


def _check_finite(sample: np.ndarray, where: str) -> None:
    if sample.dtype.kind in "fc" and not np.isfinite(sample).all():
        raise ValueError(
            f"`representative_data` must hold finite values: calibration on NaN or inf gives "
            f"no activation ranges (and a float model). Received: {where} with "
            f"{int(np.count_nonzero(~np.isfinite(sample)))} non-finite value(s) "
            f"of {sample.size}"
        )


def _drawn(items: Iterable, limit: int) -> Samples:
    """At most `limit` converter steps from `items`, each checked for NaN/inf; at least one."""
    samples = []
    for item in items:
        if len(samples) == limit:
            break
        step = [np.asarray(tensor) for tensor in (item if isinstance(item, list) else [item])]
        for tensor in step:
            _check_finite(tensor, f"sample {len(samples)}")
        samples.append(step)
    if not samples:
        raise ValueError(
            "`representative_data` gave no samples; calibration needs some (e.g. a "
            "few hundred training inputs). Received: an empty dataset or generator"
        )
    return samples


def _calibration_samples(data: RepresentativeData, shapes: list[tuple], limit: int) -> Samples:
    """Arrays, datasets or generator functions as the converter's calibration steps."""
    if isinstance(data, np.ndarray):
        if len(shapes) != 1:
            raise ValueError(
                "`representative_data` as one array works for single-input models only; "
                f"this model has {len(shapes)} inputs. Pass a generator function instead."
            )
        check_samples(data, shapes[0], "representative_data", "the model's input")
        if not len(data):
            raise ValueError(
                "`representative_data` is empty; calibration needs samples (e.g. a few "
                f"hundred training inputs). Received: representative_data.shape={data.shape}"
            )
        samples = data[:limit].astype("float32")
        _check_finite(samples, f"an array of shape {data.shape}")
        return [[sample[None]] for sample in samples]
    if isinstance(data, tf.data.Dataset):
        batches = (item[0] if isinstance(item, tuple) else item for item in data.take(limit))
        return _drawn((tf.cast(batch, tf.float32) for batch in batches), limit)
    if callable(data):
        return _drawn(data(), limit)
    raise TypeError(
        "`representative_data` must be a numpy array of samples, a tf.data.Dataset of "
        f"batches or a generator function. Received: type {type(data).__name__}"
    )


def _check_quantized(content: bytes, mode: str) -> None:
    """Raises when a calibrated conversion left a weighted op with float weights."""
    info = TFLiteFile(content)
    left = [
        f"{op.name} {info.tensors[op.outputs[0]].name!r}"
        for op in info.ops
        if op.name in _WEIGHTED_OPS and info.tensors[op.inputs[1]].dtype != "int8"
    ]
    if left:
        raise ValueError(
            f"mode={mode!r} was asked for, but the converter left {len(left)} op(s) with float "
            f"weights: {', '.join(left[:5])}{', ...' if len(left) > 5 else ''}. The "
            "calibration data probably gave no usable ranges; pass real training inputs as "
            "`representative_data`."
        )


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike | None = None,
    mode: str = "float32",
    representative_data: RepresentativeData | None = None,
    io_type: str = "float32",
    num_calibration_samples: int = 200,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int | None = None,
) -> bytes:
    """Converts a Keras model to a `.tflite` flatbuffer.

    The way `model.export(format="litert")` converts: the model is written as a SavedModel
    (`keras.export.ExportArchive`, in a temporary folder that is always removed) and
    converted by `tf.lite.TFLiteConverter.from_saved_model`, to TFLite builtin ops only
    (never Flex/SELECT_TF_OPS, which the pip runtimes lack). Calibrating a model with loops
    (recurrent layers) runs in a child process, as TF's calibrator can crash on them.

    Modes:
        * `float32`: no quantization.
        * `float16`: weights stored as float16, computed in float32 (DEQUANTIZE ops).
        * `dynamic`: dynamic-range quantization: int8 weights, float activations.
        * `int8`: full integer quantization calibrated on `representative_data`;
          only int8 builtin ops are allowed. A QAT model (from
          `quantize_model`/`quantize_apply`) needs no representative data: its
          fake-quant ranges are used, and layers left float stay float.
        * `int16x8`: int16 activations and int8 weights, calibrated likewise.

    Args:
        model: A built Keras model (Sequential, functional, or subclassed with
            `input_shape` given).
        path: Where to write the file. Written atomically (temporary file, then
            rename); the folder must exist. None: return the bytes only.
        mode: One of `MODES`.
        representative_data: Required for `int8` and `int16x8`: an array of input
            samples, a `tf.data.Dataset` of batches of size 1, or a function
            returning an iterable of `[input]` lists.
        io_type: Input/output type of quantized models: `"float32"` (the
            interpreter quantizes at the boundary) or the integer type of the mode
            (`"int8"`, or `"int16"` for `int16x8`).
        num_calibration_samples: At most this many representative samples are used.
        input_shape: The shape of one sample, needed only for subclassed models.
        batch_size: A fixed batch size for the input, or None: the batch size
            the model's inputs declare (`keras.Input(shape, batch_size=1)`),
            dynamic when they declare none. Recurrent layers (LSTM, GRU) convert
            only with a fixed one; run such a model with
            `TFLiteModel.predict(x, batch_size=...)`.

    Returns:
        The `.tflite` bytes.

    Raises:
        ValueError: Unknown `mode` or `io_type`, missing, empty or non-finite
            representative data, an `int8`/`int16x8` result with float weights, a
            model that was never built, data or an `input_shape` of the wrong shape.
        FileNotFoundError: The folder of `path` does not exist.
        ConversionError: The converter refused the model (ops without a TFLite
            builtin, named with their layers; a recurrent layer with a dynamic
            batch size) or crashed calibrating it; the message says what to do.

    Example:
        >>> model = tfcompress.models.lenet_300_100()
        >>> content = tfcompress.export_tflite(model, mode="dynamic")
        >>> content[4:8]
        b'TFL3'
    """
    if mode not in MODES:
        raise ValueError(f"Unknown `mode`. Expected one of {MODES}. Received: mode={mode!r}")
    allowed_io = _IO_TYPES.get(mode, ("float32",))
    if io_type not in allowed_io:
        raise ValueError(
            f"`io_type` for mode={mode!r} must be one of {allowed_io}. "
            f"Received: io_type={io_type!r}"
        )
    if num_calibration_samples < 1:
        raise ValueError(
            "`num_calibration_samples` must be >= 1. "
            f"Received: num_calibration_samples={num_calibration_samples}"
        )
    check_built(model)
    if path is not None:
        check_output_path(path)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(
            f"`batch_size` must be a positive integer or None. Received: batch_size={batch_size!r}"
        )
    shapes = model_input_shapes(model, input_shape)
    dtypes = _input_dtypes(model, len(shapes))
    batches = _batch_sizes(model, len(shapes), batch_size)

    function = _traced(model, shapes, dtypes, batches, input_shape)
    ops = _op_types(function)
    qat = any(op.startswith("FakeQuant") for op in ops)
    if qat and mode != "int8":
        raise ValueError(
            f"Model {model.name!r} is trained with fake quantization (QAT); export it with "
            "mode='int8', or call `strip_quantization` first for a float export. "
            f"Received: mode={mode!r}"
        )
    samples = None
    if mode in _IO_TYPES and not qat:  # a QAT model's fake-quant ops carry every range
        if representative_data is None:
            raise ValueError(
                f"mode={mode!r} calibrates activation ranges and needs `representative_data` "
                "(e.g. a few hundred training inputs). Received: representative_data=None"
            )
        samples = _calibration_samples(representative_data, shapes, num_calibration_samples)
    # Calibration crashes TF on loops (recurrent layers): there, convert in a child process.
    isolate = samples is not None and bool(ops & _LOOP_OPS)
    track = any(op.startswith("LookupTable") for op in ops)
    content = _convert(model, function, mode, io_type, qat, samples, isolate, track)
    warn_float_islands(content, model)
    if samples is not None:
        _check_quantized(content, mode)
    if path is not None:
        atomic_write_bytes(path, content)
    return content


def _convert(model, function, mode, io_type, qat, samples, isolate, track) -> bytes:
    """The SavedModel of `function` (in a temporary folder, always removed) converted."""
    with tempfile.TemporaryDirectory(prefix="tfcompress-convert-") as work:
        saved_model = os.path.join(work, "saved_model")
        write_saved_model(model, function, saved_model, track)
        if not isolate:
            try:
                return convert_saved_model(saved_model, mode, io_type, qat, samples)
            except Exception as err:  # the converter's error types are not public
                failure = known_failure(str(err))
                if failure is None:
                    raise
                raise ConversionError(
                    failure_message(failure, model.name, layer_names(model))
                ) from None
        outcome = convert_in_child(work, saved_model, mode, io_type, qat, samples)
    if isinstance(outcome, bytes):
        return outcome
    if isinstance(outcome, dict):
        raise ConversionError(failure_message(outcome, model.name, layer_names(model)))
    raise ConversionError(_crash_message(model, mode, outcome))


def _crash_site(stderr: str) -> str:
    """Where the child's Python stack was when it crashed (faulthandler's innermost frame)."""
    frames = stderr.partition("Fatal Python error")[2]
    frame = re.search(r'File "([^"]+)", line (\d+) in (\w+)', frames)
    return f" in {os.path.basename(frame[1])}:{frame[2]} {frame[3]}" if frame else ""


def _crash_message(model: keras.Model, mode: str, child: subprocess.CompletedProcess) -> str:
    """The error for a child conversion that ended without a result."""
    if child.returncode > 0:  # a Python error in the child: its traceback says what
        output = " | ".join(child.stderr.strip().splitlines()[-3:]) or "(none)"
        return (
            f"Converting model {model.name!r} for mode={mode!r} failed in the child process "
            f"(exit status {child.returncode}). Its last output: {output}"
        )
    recurrent = collect(model, (keras.layers.RNN, keras.layers.Bidirectional))
    where = f"recurrent layers ({', '.join(layer.name for layer in recurrent)})"
    return (
        f"The TFLite converter crashed ({signal.Signals(-child.returncode).name}"
        f"{_crash_site(child.stderr)}) calibrating model {model.name!r} for mode={mode!r}; "
        "it ran in a child process, so only this export failed. TF's calibrator is known "
        f"to crash on {where if recurrent else 'loops'}. Quantize the model with "
        "quantization-aware training instead, which needs no calibration: "
        "`qat = tfcompress.quantize_model(model)`, train it briefly (`qat.compile(...)`, "
        "`qat.fit(...)`), then `tfcompress.export_tflite(qat, mode='int8', batch_size=1)`."
    )
