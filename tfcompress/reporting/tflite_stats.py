"""Per-op statistics of a `.tflite` model, read from the flatbuffer."""

from __future__ import annotations

import math
import re

from tfcompress.core.weights import tflite_to_matrix
from tfcompress.export.flatbuffer import OpInfo, TensorInfo, TFLiteFile
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.weights import weight_stats

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


def short_name(tensor_name: str) -> str:
    """`"model_1/fc1_1/MatMul;model_1/fc1_1/Relu"` -> `"fc1"`: the Keras layer's name.

    A QAT wrapper's prefix is dropped (`quant_fc1` -> `fc1`), so the rows of a
    QAT model line up with those of the float model it came from.
    """
    parts = tensor_name.split(";")[0].split("/")
    name = re.sub(r"_\d+$", "", parts[-2] if len(parts) >= 2 else parts[0])
    return name.removeprefix("quant_")


def tflite_op_stats(model: TFLiteFile) -> list[LayerStats]:
    """One `LayerStats` per op of the main subgraph.

    Ops with weights (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, CONV_3D,
    TRANSPOSE_CONV) get their weight and bias counted (looking through a
    DEQUANTIZE of a float16 constant), their structure read from the stored
    weight and their MACs per sample computed from the tensor shapes. Other ops
    get 0 parameters and 0 MACs; DEQUANTIZE ops of weights are not listed.
    Rows are named after the Keras layer the converter recorded in the tensor
    names (`short_name`).
    """
    rows = []
    for info in model.ops:
        if info.name == "DEQUANTIZE" and model.tensors[info.inputs[0]].is_constant:
            continue
        output = model.tensors[info.outputs[0]].name if info.outputs else f"op_{info.index}"
        stats = LayerStats(name=short_name(output), kind=info.name)
        if info.name in WEIGHT_OPS:
            weight_at, bias_at = WEIGHT_OPS[info.name]
            weight = model.constant(info.inputs[weight_at])
            if weight is not None and "/" in weight.name:
                stats.name = short_name(weight.name)
            if weight is None:  # weights computed at run time: not a parameter tensor
                stats.macs = None
            else:
                matrix = tflite_to_matrix(info.name, weight.data)
                stats.add_weight(
                    weight_stats(weight.name, weight.data, matrix),
                    True,
                    weight.stored_bytes,
                    weight.data.nbytes,
                )
                stats.macs = _macs(info.name, weight, model, info)
            bias = model.constant(info.inputs[bias_at]) if len(info.inputs) > bias_at else None
            if bias is not None:
                stats.add_weight(weight_stats(bias.name, bias.data), False, bias.stored_bytes)
        rows.append(stats)
    return rows
