"""`export_onnx`: Keras model -> ONNX bytes, float or QAT int8 (QuantizeLinear/DequantizeLinear).

The `onnx` and `tf2onnx` packages are optional (`pip install 'tfcompress[onnx]'`) and imported
only when `export_onnx` runs.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings

import keras
import tensorflow as tf

from tfcompress.clustering.cluster import collect_cluster_wrappers, strip_clustering
from tfcompress.export.onnx_qdq import (
    fold_constant_quantization,
    signed_activations,
    weights_as_quantize_dequantize,
)
from tfcompress.pruning.prune import strip_pruning
from tfcompress.pruning.update_pruning_step import collect_wrappers
from tfcompress.quantization.pool_rounding import for_export
from tfcompress.quantization.quantize_apply import is_quantized
from tfcompress.utils.io import atomic_write_bytes, check_output_path
from tfcompress.utils.surgery import is_graph_model
from tfcompress.utils.validation import check_built, model_input_shapes

MODES = ("float32", "int8")
ACTIVATION_TYPES = ("int8", "uint8")
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear
INSTALL = "pip install 'tfcompress[onnx]'"


def _tf2onnx():
    """The `tf2onnx` module (which needs `onnx`), or an ImportError saying what to install."""
    try:
        import onnx  # noqa: F401
        import tf2onnx
    except ImportError as err:
        raise ImportError(
            f"export_onnx needs the `onnx` and `tf2onnx` packages (missing: {err.name}): {INSTALL}"
        ) from None
    return tf2onnx


def _check_opset(opset: int | None, tf2onnx) -> None:
    highest = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
    if opset is not None and (
        not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= highest
    ):
        raise ValueError(
            f"`opset` must be None (the converter's default) or an integer from {MIN_OPSET} "
            f"(per-channel QuantizeLinear) to {highest} (the newest tf2onnx "
            f"{tf2onnx.__version__} writes). Received: opset={opset!r}"
        )


def _check_writable(path: str) -> None:
    """Raises before converting when no file can be created in the folder of `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(
            f"`path` is not writable: no file can be created in {folder!r} ({err.strerror}). "
            f"Received: path={path!r}"
        ) from None


def _input_specs(model: keras.Model, input_shape: tuple | None) -> list[tf.TensorSpec]:
    """One spec per input, with a dynamic batch, named like the model's inputs."""
    shapes = model_input_shapes(model, input_shape)
    inputs = model.inputs if is_graph_model(model) else None  # none known for a subclassed one
    if not inputs or len(inputs) != len(shapes):
        return [tf.TensorSpec((None, *s), tf.float32, f"input_{i}") for i, s in enumerate(shapes)]
    return [
        tf.TensorSpec((None, *shape), tensor.dtype, tensor.name)
        for shape, tensor in zip(shapes, inputs)
    ]


def _check_input_shape(model: keras.Model, specs: list[tf.TensorSpec], input_shape: tuple) -> None:
    """Calls `model` symbolically on `specs`; a failure is reported as a wrong `input_shape`
    (instead of a traceback from deep inside the converter)."""
    samples = [keras.KerasTensor(spec.shape, spec.dtype.name) for spec in specs]
    try:
        model.compute_output_spec(samples[0] if len(samples) == 1 else samples)
    except (ValueError, TypeError) as err:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines()  # no terminal bold
        first = next((line.strip() for line in lines if "incompatible" in line), "")
        raise ValueError(
            f"`input_shape` does not fit model {model.name!r}: calling it on samples of that "
            f"shape failed ({first or type(err).__name__}). Received: input_shape="
            f"{tuple(input_shape)!r}"
        ) from err


def _without_training_wrappers(model: keras.Model) -> keras.Model:
    """`model` with its pruning and clustering wrappers stripped: plain layers holding the
    zeros and the shared values."""
    if collect_wrappers(model):
        model = strip_pruning(model)
    if collect_cluster_wrappers(model):
        model = strip_clustering(model)
    return model


def _float_onnx(model: keras.Model, specs: list[tf.TensorSpec], opset: int | None) -> bytes:
    """Keras' own ONNX export (tf2onnx underneath), read back from a temporary folder."""
    signature = specs if len(specs) == 1 else [specs]
    with tempfile.TemporaryDirectory(prefix="tfcompress-onnx-") as folder:
        file = os.path.join(folder, "model.onnx")
        with warnings.catch_warnings():  # Keras' numpy 2 patch of tf2onnx warns about np.object
            warnings.filterwarnings("ignore", ".*np.object", FutureWarning)
            model.export(
                file, format="onnx", verbose=False, input_signature=signature, opset_version=opset
            )
        with open(file, "rb") as f:
            return f.read()


def _qdq_onnx(
    model: keras.Model, specs: list[tf.TensorSpec], opset: int | None, signed: bool, tf2onnx
) -> bytes:
    """A QAT model through tf2onnx, its weight fake quantization turned into int8 QDQ (and its
    activations' into int8 too when `signed`)."""

    @tf.function(input_signature=specs)
    def serve(*inputs):
        return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    with for_export():  # QAT's average pools as the converter reads them
        function = serve.get_concrete_function()
    inputs = [t.name for t in function.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in function.outputs]
    graph_def = tf2onnx.tf_loader.from_function(function, inputs, outputs)
    proto, _ = tf2onnx.convert.from_graph_def(
        weights_as_quantize_dequantize(graph_def),
        input_names=inputs,
        output_names=outputs,
        opset=opset,
        tensors_to_rename={name: spec.name for name, spec in zip(inputs, specs)},
    )
    fold_constant_quantization(proto)
    if signed:
        signed_activations(proto)
    return proto.SerializeToString()


def export_onnx(
    model: keras.Model,
    path: str | os.PathLike | None = None,
    mode: str = "float32",
    input_shape: tuple[int, ...] | None = None,
    opset: int | None = None,
    activation_type: str = "int8",
) -> bytes:
    """Converts a Keras model to an ONNX model, for ONNX Runtime (also Mobile), OpenVINO and
    the other runtimes that read ONNX.

    Modes:
        * `float32`: the float model, through Keras' own
          `model.export(format="onnx")`. Pruning and clustering wrappers are
          stripped first (`strip_pruning`, which also applies the masks to the
          wrapped weights, and `strip_clustering`), so the weights keep their
          zeros and their shared values.
        * `int8`: a QAT model (from `quantize_model`/`quantize_apply`) in the
          ONNX QDQ format, through tf2onnx: int8 weights (per channel where
          QAT quantized them per channel, zero point 0) behind
          `DequantizeLinear`, and a `QuantizeLinear`/`DequantizeLinear` pair
          (asymmetric, of `activation_type`) at every activation range QAT
          learned. ONNX Runtime fuses the pairs into integer kernels
          (QLinearConv, QGemm); the convolutions of the tiny MobileNet (batch
          norm folded in) it runs in float on the dequantized int8 weights,
          still at the QAT ranges. 4-bit weights keep their 15 levels, stored
          one per byte. Layers QAT left float stay float.

    Args:
        model: A built Keras model (Sequential, functional, or subclassed with
            `input_shape` given).
        path: Where to write the `.onnx` file. Written atomically (temporary
            file, then rename); the folder must exist and be writable. None:
            return the bytes only.
        mode: One of `MODES`; `int8` for QAT models, `float32` for all others.
        input_shape: The shape of one sample, needed only for subclassed models.
        opset: The ONNX opset (13 or newer), or None for the converter's
            default (15).
        activation_type: The integer type of the activations in `int8` mode:
            `"int8"` (as in TFLite; ONNX Runtime's first choice, S8S8, whose
            x86 kernels do not saturate on CPUs without VNNI) or `"uint8"`
            (U8S8, OpenVINO's own format: its CPU plugin compiles it at every
            inference precision, int8 activations only at f32 on bf16 CPUs).

    Returns:
        The ONNX model's bytes (a serialized `onnx.ModelProto`). Its inputs are
        named like the model's inputs and have a dynamic batch size.

    Raises:
        ImportError: `onnx` or `tf2onnx` is not installed.
        ValueError: Unknown `mode`, `opset` or `activation_type` (or one for
            `float32`), `int8` for a model without QAT
            (or `float32` for one with it), a model that was never built, an
            `input_shape` of the wrong shape.
        FileNotFoundError: The folder of `path` does not exist.
        PermissionError: No file can be created in the folder of `path`.

    Example:
        >>> import onnxruntime
        >>> model = tfcompress.models.lenet_300_100()
        >>> content = tfcompress.export_onnx(model, "lenet.onnx")
        >>> session = onnxruntime.InferenceSession(content)
        >>> [i.name for i in session.get_inputs()]
        ['image']
        >>> session.run(None, {"image": np.zeros((2, 28, 28, 1), "float32")})[0].shape
        (2, 10)
        >>> qat = tfcompress.quantize_model(model)
        >>> content = tfcompress.export_onnx(qat, mode="int8")
        >>> import onnx
        >>> graph = onnx.load_from_string(content).graph
        >>> sorted({t.data_type for t in graph.initializer if len(t.dims) == 2})  # int8 kernels
        [3]
    """
    if mode not in MODES:
        raise ValueError(f"Unknown `mode`. Expected one of {MODES}. Received: mode={mode!r}")
    if activation_type not in ACTIVATION_TYPES or (mode == "float32" and activation_type != "int8"):
        raise ValueError(
            f"`activation_type` must be one of {ACTIVATION_TYPES}, and it applies to "
            f"mode='int8' only. Received: activation_type={activation_type!r}, mode={mode!r}"
        )
    check_built(model)
    if path is not None:
        path = check_output_path(path)
        _check_writable(path)
    tf2onnx = _tf2onnx()
    _check_opset(opset, tf2onnx)
    qat = is_quantized(model)
    if qat and mode != "int8":
        raise ValueError(
            f"Model {model.name!r} is trained with fake quantization (QAT); export it with "
            "mode='int8', or call `strip_quantization` first for a float export. "
            f"Received: mode={mode!r}"
        )
    if mode == "int8" and not qat:
        raise ValueError(
            f"mode='int8' exports the ranges a QAT model learned, and model {model.name!r} has "
            "no fake quantization: train it with `quantize_model` first (or quantize the float "
            "export with `onnxruntime.quantization.quantize_static`). Received: mode='int8'"
        )
    specs = _input_specs(model, input_shape)
    if input_shape is not None:
        _check_input_shape(model, specs, input_shape)
    if qat:
        content = _qdq_onnx(model, specs, opset, activation_type == "int8", tf2onnx)
    else:
        content = _float_onnx(_without_training_wrappers(model), specs, opset)
    if path is not None:
        atomic_write_bytes(path, content)
    return content
