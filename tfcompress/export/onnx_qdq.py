"""QAT fake quantization as ONNX QDQ: int8 weights behind DequantizeLinear, and a
QuantizeLinear/DequantizeLinear pair at each learned activation range.

Two passes around tf2onnx. Before it, on the frozen TensorFlow graph: each weight's fake
quantization (symmetric, narrow range, per tensor or per channel) becomes the equivalent
`QuantizeAndDequantizeV4`, which tf2onnx keeps as a per-channel int8 QDQ pair; a `FakeQuant*`
op on a constant it would fold into float values, and its own `FakeQuant*` conversion is for
activations only (asymmetric uint8, per tensor). After it, on the ONNX graph: each
QuantizeLinear of a constant is folded into the int8 tensor it computes, so the file stores
int8 weights, and (unless uint8 activations are asked for) the activations' uint8 zero points
move to int8: the same grid shifted by 128, as in TFLite.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_WEIGHT_FAKE_QUANT = ("FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel")
_INT8_LEVELS = 127  # the narrow signed grid tf2onnx quantizes weights to: -127 .. 127


def _constant(nodes: dict, name: str) -> np.ndarray | None:
    """The value of the Const node producing tensor `name`, or None when it is not one."""
    node = nodes.get(name.split(":")[0])
    if node is None or node.op != "Const":
        return None
    return tf.make_ndarray(node.attr["value"].tensor)


def _range_node(graph_def, name: str, value: np.ndarray):
    node = graph_def.node.add()
    node.name = name
    node.op = "Const"
    node.attr["dtype"].type = tf.float32.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value.astype(np.float32)))
    return node


def _is_symmetric_narrow(node, lo: np.ndarray, hi: np.ndarray) -> bool:
    """True for a weight quantization as `WeightQuantizer` makes it: `[-max|w|, max|w|]` on the
    narrow grid (zero point 0)."""
    return node.attr["narrow_range"].b and np.array_equal(lo, -hi)


def weights_as_quantize_dequantize(graph_def):
    """Rewrites each fake quantization of a constant (a weight) in a frozen `GraphDef` as a
    `QuantizeAndDequantizeV4` on the same grid, in place; returns the `GraphDef`.

    tf2onnx turns `QuantizeAndDequantizeV4` into `QuantizeLinear`/`DequantizeLinear` with a
    zero point of 0 and a scale of `max / 127` per channel. A weight of `b < 8` bits is on the
    grid `max / (2^(b-1) - 1)`: its range is widened by `127 / (2^(b-1) - 1)` so that the
    scale comes out the same, and the int8 values stay within `-(2^(b-1) - 1) .. 2^(b-1) - 1`.
    """
    nodes = {node.name: node for node in graph_def.node}
    for node in list(graph_def.node):
        if node.op not in _WEIGHT_FAKE_QUANT:
            continue
        weight = _constant(nodes, node.input[0])
        lo, hi = (_constant(nodes, name) for name in node.input[1:3])
        if weight is None or lo is None or hi is None or not _is_symmetric_narrow(node, lo, hi):
            continue  # an activation (tf2onnx converts it), or a constant it folds to floats
        bits = node.attr["num_bits"].i
        widened = hi * (_INT8_LEVELS / (2 ** (bits - 1) - 1))
        _range_node(graph_def, f"{node.name}/onnx_min", -widened)
        _range_node(graph_def, f"{node.name}/onnx_max", widened)
        per_channel = node.op.endswith("PerChannel")
        node.op = "QuantizeAndDequantizeV4"
        node.input[1:3] = [f"{node.name}/onnx_min", f"{node.name}/onnx_max"]
        node.attr.clear()
        node.attr["T"].type = tf.float32.as_datatype_enum
        node.attr["signed_input"].b = True
        node.attr["num_bits"].i = 8
        node.attr["range_given"].b = True
        node.attr["narrow_range"].b = True
        node.attr["round_mode"].s = b"HALF_TO_EVEN"
        node.attr["axis"].i = weight.ndim - 1 if per_channel else -1
    return graph_def


def _quantized(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)`."""
    if scale.ndim:  # per channel, along `axis`
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    info = np.iinfo(zero_point.dtype)
    q = np.rint(x.astype(np.float32) / scale) + zero_point.astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


def fold_constant_quantization(model) -> int:
    """Replaces each `QuantizeLinear` of an initializer in an ONNX `ModelProto` (in place) by
    the integer initializer it computes, and drops float initializers left unused.

    Returns:
        How many were folded.
    """
    from onnx import helper, numpy_helper  # the optional `onnx` extra (export_onnx checks it)

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or not all(i in initializers for i in node.input):
            continue
        x, scale, zero_point = (numpy_helper.to_array(initializers[i]) for i in node.input)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        q = _quantized(x, scale, zero_point, axis % max(x.ndim, 1))
        graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    used |= {output.name for output in graph.output}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return len(folded)


def signed_activations(model) -> int:
    """Moves each uint8 zero point of an ONNX `ModelProto`'s QuantizeLinear/DequantizeLinear
    pairs (in place) to int8: `zero_point - 128`, so `q - zero_point` is unchanged.

    Returns:
        How many zero points moved.
    """
    from onnx import numpy_helper  # the optional `onnx` extra (export_onnx checks it)

    quantizers = [
        n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
    ]
    zero_points = {n.input[2] for n in quantizers if len(n.input) > 2}
    moved = 0
    for tensor in model.graph.initializer:
        value = numpy_helper.to_array(tensor)
        if tensor.name in zero_points and value.dtype == np.uint8:
            signed = (value.astype(np.int16) - 128).astype(np.int8)
            tensor.CopyFrom(numpy_helper.from_array(signed, tensor.name))
            moved += 1
    return moved
