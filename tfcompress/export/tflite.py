"""`export_tflite`: Keras model -> `.tflite` bytes in every common quantization mode."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tfcompress.export.flatbuffer import TFLiteFile
from tfcompress.export.float_islands import warn_float_islands
from tfcompress.utils.io import atomic_write_bytes, check_output_path
from tfcompress.utils.surgery import is_graph_model
from tfcompress.utils.validation import check_built, check_samples, model_input_shapes

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
_WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
_IO_TYPES = {"int8": ("float32", "int8"), "int16x8": ("float32", "int16")}

RepresentativeData = np.ndarray | Callable[[], Iterable] | tf.data.Dataset


def _has_fake_quant(function) -> bool:
    """True when the traced model fake-quantizes (QAT): its ranges then drive the converter."""
    return any(op.type.startswith("FakeQuant") for op in function.graph.get_operations())


def _concrete_function(model: keras.Model, shapes: list[tuple], dtypes: list, batch_size):
    signature = [
        tf.TensorSpec((batch_size, *shape), dtype, name=f"input_{i}")
        for i, (shape, dtype) in enumerate(zip(shapes, dtypes))
    ]

    @tf.function(input_signature=signature)
    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    return serve.get_concrete_function()


def _core_message(err: Exception) -> str:
    """The message Keras highlights inside a traced call's error (else its last error line)."""
    text = str(err)
    highlighted = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.DOTALL)
    if highlighted:
        return highlighted.group(1).strip()[:300]
    lines = [line.strip() for line in text.splitlines() if "Error" in line]
    return (lines[-1] if lines else type(err).__name__)[:300]


def _traced(model: keras.Model, shapes: list[tuple], dtypes: list, batch_size, input_shape):
    """`_concrete_function`, with a call that fails on the given `input_shape` reported as a
    wrong `input_shape` (instead of the traceback from deep inside the model)."""
    try:
        return _concrete_function(model, shapes, dtypes, batch_size)
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


def _check_finite(sample: np.ndarray, where: str) -> None:
    if sample.dtype.kind in "fc" and not np.isfinite(sample).all():
        raise ValueError(
            f"`representative_data` must hold finite values: calibration on NaN or inf gives "
            f"no activation ranges (and a float model). Received: {where} with "
            f"{int(np.count_nonzero(~np.isfinite(sample)))} non-finite value(s) "
            f"of {sample.size}"
        )


def _checked(gen: Callable[[], Iterable]) -> Callable[[], Iterable]:
    """`gen` with each sample checked for NaN/inf as it is drawn, and at least one drawn."""

    def checked():
        count = 0
        for count, item in enumerate(gen(), start=1):
            for tensor in item:
                _check_finite(np.asarray(tensor), f"sample {count - 1}")
            yield item
        if not count:
            raise ValueError(
                "`representative_data` gave no samples; calibration needs some (e.g. a "
                "few hundred training inputs). Received: an empty dataset or generator"
            )

    return checked


def _representative_gen(data: RepresentativeData, shapes: list[tuple], limit: int):
    """Turns arrays, datasets or generator functions into the converter's generator."""
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

        def gen():
            for sample in samples:
                yield [sample[None]]

        return gen
    if isinstance(data, tf.data.Dataset):

        def gen():
            for item in data.take(limit):
                item = item[0] if isinstance(item, tuple) else item
                yield [tf.cast(item, tf.float32)]

        return _checked(gen)
    if callable(data):

        def gen():
            for i, item in enumerate(data()):
                if i >= limit:
                    break
                yield item if isinstance(item, list) else [item]

        return _checked(gen)
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
        batch_size: A fixed batch size for the input, or None for a dynamic
            one. Recurrent layers (LSTM, GRU) convert only with a fixed one;
            run such a model with `TFLiteModel.predict(x, batch_size=...)`.

    Returns:
        The `.tflite` bytes.

    Raises:
        ValueError: Unknown `mode` or `io_type`, missing, empty or non-finite
            representative data, an `int8`/`int16x8` result with float weights, a
            model that was never built, data or an `input_shape` of the wrong shape.
        FileNotFoundError: The folder of `path` does not exist.

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

    function = _traced(model, shapes, dtypes, batch_size, input_shape)
    qat = _has_fake_quant(function)
    if qat and mode != "int8":
        raise ValueError(
            f"Model {model.name!r} is trained with fake quantization (QAT); export it with "
            "mode='int8', or call `strip_quantization` first for a float export. "
            f"Received: mode={mode!r}"
        )
    if mode in _IO_TYPES and representative_data is None and not qat:
        raise ValueError(
            f"mode={mode!r} calibrates activation ranges and needs `representative_data` "
            "(e.g. a few hundred training inputs). Received: representative_data=None"
        )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if qat:  # the fake-quant ops carry every range; layers left float stay float
        if io_type != "float32":
            converter.inference_input_type = tf.as_dtype(io_type)
            converter.inference_output_type = tf.as_dtype(io_type)
    elif mode in _IO_TYPES:
        converter.representative_dataset = _representative_gen(
            representative_data, shapes, num_calibration_samples
        )
        ops = tf.lite.OpsSet
        converter.target_spec.supported_ops = [
            ops.TFLITE_BUILTINS_INT8
            if mode == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if io_type != "float32":
            converter.inference_input_type = tf.as_dtype(io_type)
            converter.inference_output_type = tf.as_dtype(io_type)
    content = converter.convert()
    warn_float_islands(content, model)
    if mode in _IO_TYPES and not qat:
        _check_quantized(content, mode)
    if path is not None:
        atomic_write_bytes(path, content)
    return content
