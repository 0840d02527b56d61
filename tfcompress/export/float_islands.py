"""Float islands of an int8 `.tflite`: ops running in float32 between int8 ones.

A QAT model converts to an all-int8 graph only where every tensor has a
range; an op whose output has none (a BatchNormalization the converter cannot
fold, an operation QAT does not know) runs in float between a DEQUANTIZE and
a QUANTIZE. The model still works, but slower, and its outputs drift from the
QAT model's. `find_float_islands` finds them in the file and names the Keras
layers they come from; `warn_float_islands` says so once per export.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import keras

from tfcompress.export.flatbuffer import OpInfo, TFLiteFile
from tfcompress.utils.surgery import leaf_layers

_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
_FLOAT = ("float32", "float16")
_INTEGER = ("int8", "int16")


@dataclass(frozen=True)
class FloatIsland:
    """Connected float ops of an int8 model.

    Attributes:
        ops: The float ops' names, in graph order (`["MUL", "ADD"]`).
        layers: The Keras layers they come from (names, `"?"` when unknown).
    """

    ops: tuple[str, ...]
    layers: tuple[str, ...]

    def __str__(self) -> str:
        return f"{' -> '.join(self.ops)} in {', '.join(repr(name) for name in self.layers)}"


def find_float_islands(content: bytes, model: keras.Model | None = None) -> list[FloatIsland]:
    """The float islands of a `.tflite` whose activations are int8 (none for a float model).

    A float op is one that is not QUANTIZE/DEQUANTIZE and writes a float
    tensor; an island is a group of float ops connected through their tensors
    that reads an int8 activation through a DEQUANTIZE (float preprocessing of
    a model input, before its QUANTIZE, is none).

    Args:
        content: The `.tflite` bytes.
        model: The Keras model it was converted from, to name the layers (a
            QAT wrapper is named by the layer it wraps).

    Example:
        >>> from tfcompress.export.float_islands import find_float_islands
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> find_float_islands(tfcompress.export_tflite(model))
        []
    """
    info = TFLiteFile(content)
    if not any(t.dtype in _INTEGER and not t.is_constant for t in info.tensors):
        return []  # a float model: nothing is an island
    floating = [op for op in info.ops if _is_float_op(info, op)]
    dequantized = {
        t
        for op in info.ops
        if op.name == "DEQUANTIZE" and not info.tensors[op.inputs[0]].is_constant
        for t in op.outputs
    }
    names = _layer_names(model)
    return [
        FloatIsland(
            tuple(op.name for op in group),
            tuple(dict.fromkeys(_layer_of(info, op, names) for op in group)),
        )
        for group in _connected(floating)
        if any(t in dequantized for op in group for t in op.inputs)  # not float preprocessing
    ]


def warn_float_islands(content: bytes, model: keras.Model) -> list[FloatIsland]:
    """Warns once, naming the layers, when the int8 `content` has float islands; returns them."""
    islands = find_float_islands(content, model)
    if islands:
        listed = "; ".join(str(island) for island in islands[:8])
        more = f"; and {len(islands) - 8} more" if len(islands) > 8 else ""
        warnings.warn(
            f"export_tflite: the int8 model of {model.name!r} has {len(islands)} float "
            f"island(s), ops that run in float32 between DEQUANTIZE and QUANTIZE: {listed}{more}. "
            "Their layers have no int8 form after QAT (or were left float); expect slower "
            "inference and outputs further from the Keras model's.",
            stacklevel=3,
        )
    return islands


def _is_float_op(info: TFLiteFile, op: OpInfo) -> bool:
    if op.name in _BOUNDARY_OPS:
        return False
    return any(t >= 0 and info.tensors[t].dtype in _FLOAT for t in op.outputs)


def _connected(ops: list[OpInfo]) -> list[list[OpInfo]]:
    """`ops` grouped by shared tensors (union-find), each group in graph order."""
    parent = list(range(len(ops)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    writer = {t: i for i, op in enumerate(ops) for t in op.outputs}
    for i, op in enumerate(ops):
        for t in op.inputs:
            if t in writer:
                parent[root(i)] = root(writer[t])
    groups: dict[int, list[OpInfo]] = {}
    for i, op in enumerate(ops):
        groups.setdefault(root(i), []).append(op)
    return list(groups.values())


def _layer_names(model: keras.Model | None) -> dict[str, str]:
    """Each layer name of `model` (nested and wrapped ones too) -> the name to report."""
    if model is None:
        return {}
    names = {}
    for layer in leaf_layers(model, (keras.layers.Wrapper,)):
        inner = layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
        names[layer.name] = f"{inner.name} ({type(inner).__name__})"
    for layer in model.layers:  # nested models are named too (a split SeparableConv2D)
        names.setdefault(layer.name, f"{layer.name} ({type(layer).__name__})")
    return names


def _layer_of(info: TFLiteFile, op: OpInfo, names: dict[str, str]) -> str:
    """The layer named in the op's output tensor name (a `/`-path of name scopes)."""
    tensor = info.tensors[op.outputs[0]].name
    scopes = tensor.split(";")[0].split("/")
    for scope in reversed(scopes):  # the innermost layer
        for candidate in (scope, re.sub(r"_\d+$", "", scope)):
            if candidate in names:
                return names[candidate]
    return scopes[1] if len(scopes) > 1 else tensor or "?"
