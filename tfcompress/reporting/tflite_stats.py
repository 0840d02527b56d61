"""Per-op statistics of a `.tflite` model, read from the flatbuffer."""

from __future__ import annotations

import math
import re

from tfcompress.core.weights import tflite_to_matrix
from tfcompress.export.flatbuffer import OpInfo, TensorInfo, TFLiteFile
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.weights import WeightStats, weight_stats

# op -> (weight input index, bias input index) for ops whose weights the report counts.
WEIGHT_OPS = {
    "FULLY_CONNECTED": (1, 2),
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "CONV_3D": (1, 2),
    "TRANSPOSE_CONV": (1, 3),
}


def _macs(op: str, weight: TensorInfo, model: TFLiteFile, info: OpInfo) -> int:
    out_elems = math.prod(model.tensors[info.outputs[0]].shape[1:])
    rows = math.prod(model.tensors[info.outputs[0]].shape[:-1][1:])  # FC with >2-D output
    shape = weight.shape
    if op == "FULLY_CONNECTED":
        return max(rows, 1) * shape[0] * shape[1]
    if op == "CONV_2D":
        return out_elems * math.prod(shape[1:])
    if op == "DEPTHWISE_CONV_2D":
        return out_elems * shape[1] * shape[2]
    if op == "CONV_3D":
        return out_elems * math.prod(shape[:-1])
    # TRANSPOSE_CONV: every input pixel scatters a [out, kh, kw] patch per input channel.
    input_elems = math.prod(model.tensors[info.inputs[2]].shape[1:])
    return input_elems * math.prod(shape[:-1])


# Last parts of the names of ops that read a layer's weight: among the names the
# converter fused into one (`"m/bn/batchnorm/mul;m/conv/depthwise"`), the layer's.
WEIGHT_OP_NAMES = ("MatMul", "BiasAdd", "convolution", "depthwise", "conv_transpose", "Conv2D")
# Name scopes TF opens inside one layer's ops (not layers of their own).
OP_SCOPES = (*WEIGHT_OP_NAMES, "separable_conv2d", "batchnorm")
# The suffix the export's second trace of a Keras 3 model adds to every name scope.
TRACE_SUFFIX = re.compile(r"_\d+$")


def layer_scopes(tensor_name: str) -> list[str]:
    """The name scopes of the layer behind a tensor, the model's first:
    `"m_1/sep_1/separable_conv2d/depthwise"` -> `["m_1", "sep_1"]`."""
    names = [part.split("/") for part in tensor_name.split(";")]
    parts = next((n for n in names if n[-1] in WEIGHT_OP_NAMES), names[0])
    scopes = parts[:-1]
    while scopes and scopes[-1] in OP_SCOPES:
        scopes.pop()
    return scopes


def trace_suffixed(names: list[str]) -> bool:
    """Whether the model's and the layer's scope in these tensor names all carry a trace
    suffix (`model_1/fc1_1/...`), as in files tfcompress exports from Keras 3; files from
    elsewhere (tf.keras) have none, and a name such as `conv_dw_1` keeps its digits."""
    paths = [layer_scopes(name) for name in names]
    scopes = [scope for path in paths if len(path) > 1 for scope in path[:2]]
    return bool(scopes) and all(TRACE_SUFFIX.search(scope) for scope in scopes)


def short_name(tensor_name: str, suffixed: bool = True) -> str:
    """`"model_1/fc1_1/MatMul;model_1/fc1_1/Relu"` -> `"fc1"`: the Keras layer's name.

    The model's scope is dropped, a nested model's layer reads `inner/fc1` (as
    in the Keras rows), and with `suffixed` the trace suffix of each scope (see
    `trace_suffixed`). A QAT wrapper's prefix is dropped (`quant_fc1` -> `fc1`),
    so the rows of a QAT model line up with those of the float model it came from.
    """
    scopes = layer_scopes(tensor_name)
    if len(scopes) > 1:
        scopes = scopes[1:]
    elif not scopes:
        scopes = [tensor_name.split(";")[0].split("/")[0]]
    if suffixed:
        scopes = [TRACE_SUFFIX.sub("", scope) for scope in scopes]
    return "/".join(scope.removeprefix("quant_") for scope in scopes)


def _weight_stats(op: str, weight: TensorInfo) -> WeightStats:
    return weight_stats(
        weight.name,
        weight.data,
        tflite_to_matrix(op, weight.data),
        weight.stored_values if weight.is_sparse else None,
    )


def tflite_op_stats(model: TFLiteFile) -> list[LayerStats]:
    """One `LayerStats` per op of the main subgraph.

    Ops with weights (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, CONV_3D,
    TRANSPOSE_CONV) get their weight and bias counted (looking through the
    DEQUANTIZE of a float16 constant and the DENSIFY of a sparse one), their
    structure read from the stored weight (densified) and their MACs per sample
    computed from the tensor shapes. Other ops get 0 parameters and 0 MACs; the
    DEQUANTIZE and DENSIFY ops of weights are not listed. Rows are named after
    the Keras layer the converter recorded in the tensor names (`short_name`).
    """
    weights = [
        model.constant(info.inputs[WEIGHT_OPS[info.name][0]])
        for info in model.ops
        if info.name in WEIGHT_OPS
    ]
    names = [w.name for w in weights if w is not None]
    names += [model.tensors[i].name for info in model.ops for i in info.outputs]
    suffixed = trace_suffixed(names)
    rows = []
    for info in model.ops:
        if info.name in ("DEQUANTIZE", "DENSIFY") and model.constant(info.outputs[0]) is not None:
            continue
        output = model.tensors[info.outputs[0]].name if info.outputs else f"op_{info.index}"
        stats = LayerStats(name=short_name(output, suffixed), kind=info.name)
        if info.name in WEIGHT_OPS:
            weight_at, bias_at = WEIGHT_OPS[info.name]
            weight = model.constant(info.inputs[weight_at])
            if weight is not None and "/" in weight.name:
                stats.name = short_name(weight.name, suffixed)
            if weight is None:  # weights computed at run time: not a parameter tensor
                stats.macs = None
            else:
                # A sparse weight is held dense once DENSIFY (or the kernel) expands it.
                stats.add_weight(
                    _weight_stats(info.name, weight), True, weight.stored_bytes, weight.data.nbytes
                )
                stats.macs = _macs(info.name, weight, model, info)
            bias = model.constant(info.inputs[bias_at]) if len(info.inputs) > bias_at else None
            if bias is not None:
                stored = bias.stored_values if bias.is_sparse else None
                stats.add_weight(
                    weight_stats(bias.name, bias.data, stored_values=stored),
                    False,
                    bias.stored_bytes,
                )
        rows.append(stats)
    return rows
