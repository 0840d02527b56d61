"""The TFLite converter driven the way Keras' LiteRT export drives it: the model written as a
SavedModel with `keras.export.ExportArchive`, converted by `TFLiteConverter.from_saved_model`,
to TFLite's builtin ops only (the Flex kernels, SELECT_TF_OPS, are not in the pip runtimes)."""

from __future__ import annotations

import contextlib
import gc
import re

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

# Calibrated modes -> the only op set their ops may come from.
CALIBRATED_OPS = {
    "int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
    "int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
}

Samples = list[list[np.ndarray]]

_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_SELECT_LIST = re.compile(r"(?:TF Select|Flex) ops: ([\w, ]+)")
_STATIC_SHAPE = "element_shape to be static"
_POSITION = re.compile(r"(?:input|output)_(\d+)")
_SCOPE = re.compile(r'"([^"\s]+/[^"\s@]+)(?:@[^"]*)?"')  # "model/layer/Op@__inference_..."


class ConversionError(RuntimeError):
    """The TFLite converter refused a model, or crashed while converting it.

    The message says what failed (the TensorFlow ops without a TFLite builtin and the layers
    they come from, or the step that crashed) and what to do about it.
    """


def write_saved_model(
    model: keras.Model,
    function: tf.types.experimental.GenericFunction,
    directory: str,
    track: bool,
) -> None:
    """Writes `function`, a traced serving function of `model`, as a SavedModel.

    The archive `model.export(format="litert")` converts, with `function` its one endpoint:
    that saves the variables `function` reads. `track`: track `model` itself too, which is
    what saves its lookup tables (`StringLookup`, ...); it doubles the writing time, so only
    a model whose function looks tables up needs it.
    """
    archive = keras.export.ExportArchive()
    if track:
        archive.track(model)
    archive.add_endpoint("serve", function)
    archive.write_out(directory, verbose=False)


def convert_saved_model(
    directory: str, mode: str, io_type: str, qat: bool, samples: Samples | None
) -> bytes:
    """Converts the SavedModel in `directory` to `.tflite` bytes in `mode`.

    `samples` (lists of input arrays, one list per converter step) calibrate the `int8` and
    `int16x8` modes of a model without fake quantization; a QAT model (`qat`) brings its
    ranges and keeps the layers it left float. `io_type`: the quantized models' input and
    output type.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(directory)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED_OPS and not qat:
        converter.representative_dataset = lambda: iter(samples)
        converter.target_spec.supported_ops = [CALIBRATED_OPS[mode]]
    if io_type != "float32":
        converter.inference_input_type = tf.as_dtype(io_type)
        converter.inference_output_type = tf.as_dtype(io_type)
    with _older_objects_frozen():
        return _positional_io(converter.convert())


def _positional_io(content: bytes) -> bytes:
    """`content` with its inputs and outputs in the order of the signature's `input_0`,
    `input_1`, ... and `output_0`, ...: the SavedModel importer lists them in whatever order
    its signature map iterates, and interpreters number inputs by that list."""
    root = flatbuffer_utils.schema_fb.Model.GetRootAsModel(content, 0)
    signatures = [root.SignatureDefs(i) for i in range(root.SignatureDefsLength())]
    if all(max(s.InputsLength(), s.OutputsLength()) < 2 for s in signatures):
        return content  # nothing to order: no need to unpack the model
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    changed = False
    for signature in model.signatureDefs:
        graph = model.subgraphs[signature.subgraphIndex]
        for entries, attribute in ((signature.inputs, "inputs"), (signature.outputs, "outputs")):
            positions = [_POSITION.fullmatch(entry.name.decode()) for entry in entries]
            if len(entries) < 2 or not all(positions):  # one tensor, or names of another kind
                continue
            by_position = sorted(zip((int(m[1]) for m in positions), entries), key=lambda p: p[0])
            ordered = [entry.tensorIndex for _, entry in by_position]
            if list(getattr(graph, attribute)) != ordered:
                setattr(graph, attribute, ordered)
                changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else content


@contextlib.contextmanager
def _older_objects_frozen():
    """Leaves the objects that exist now out of garbage collections until the block ends.

    `from_saved_model(...).convert()` calls `gc.collect()` to free the SavedModel it loaded;
    in a process holding many objects (a notebook, a test session) that full collection
    costs about a second per conversion. With the older objects frozen it only looks at the
    conversion's own. A heap someone else froze (e.g. before forking) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def known_failure(message: str) -> dict | None:
    """What a converter error message says, for the failures we can explain; else None.

    Returns:
        `{"ops": {op: scope or ""}}` for ops TFLite has no builtin for, or
        `{"static_shape": scope}` for a loop (recurrent layer) lowered with a dynamic batch.
    """
    ops = {}
    for line in message.splitlines():
        found = _NOT_BUILTIN.search(line)
        if found:
            scope = _SCOPE.search(line)
            ops.setdefault(found.group(1), scope.group(1) if scope else "")
    for listed in _SELECT_LIST.findall(message):
        for op in filter(None, (name.strip() for name in listed.split(","))):
            ops.setdefault(op.removeprefix("Flex"), "")
    if ops:
        return {"ops": ops}
    for line in message.splitlines():
        if _STATIC_SHAPE in line:
            scope = _SCOPE.search(line)
            return {"static_shape": scope.group(1) if scope else ""}
    return None


def layer_of(scope: str, names: set[str]) -> str | None:
    """The innermost layer of `names` that the op scope `scope` ("model/gru_1/while/...")
    runs in; TF numbers name scopes, so "gru_1" is layer "gru" when no "gru_1" exists."""
    found = None
    for part in scope.split("/")[:-1]:
        if part in names:
            found = part
        elif re.sub(r"_\d+$", "", part) in names:
            found = re.sub(r"_\d+$", "", part)
    return found


def failure_message(failure: dict, model_name: str, names: set[str]) -> str:
    """The error for a `known_failure` of model `model_name` with layers `names`."""
    if "ops" in failure:
        described = []
        for op, scope in failure["ops"].items():
            layer = layer_of(scope, names)
            described.append(f"{op} (layer {layer!r})" if layer else op)
        return (
            f"Model {model_name!r} uses TensorFlow op(s) that TFLite has no builtin kernel "
            f"for: {', '.join(described)}. They would need Flex ops (SELECT_TF_OPS), which "
            "the pip LiteRT runtimes do not include, so tfcompress converts to builtin ops "
            "only: build that part from supported layers, or compute it outside the model."
        )
    layer = layer_of(failure["static_shape"], names)
    where = f"layer {layer!r}" if layer else "a recurrent layer"
    return (
        f"Model {model_name!r} has a loop ({where}) that the converter lowers only with a "
        "fixed batch size, and its input's batch size is dynamic. Pass `batch_size=1` to "
        "`export_tflite` (or build the model on `keras.Input(shape, batch_size=1)`), and "
        "run the result with `TFLiteModel.predict(x, batch_size=1)`."
    )
