"""A minimal reader of the `.tflite` flatbuffer: ops, tensors, types and constant data.

Written from the public TFLite schema (`schema.fbs`); it reads only what the
report and the tests need and never touches an interpreter, so it sees the
model exactly as stored, before any delegate rewrites it (and reads models
whose custom ops no interpreter here resolves). Op names come from the
installed schema's `BuiltinOperator` enum; sparse constants are densified.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from tfcompress.export.sparsity import TensorSparsity

# TensorType enum of the schema -> numpy dtype (None: no numpy equivalent).
TENSOR_TYPES: dict[int, tuple[str, object]] = {
    0: ("float32", np.float32),
    1: ("float16", np.float16),
    2: ("int32", np.int32),
    3: ("uint8", np.uint8),
    4: ("int64", np.int64),
    5: ("string", None),
    6: ("bool", np.bool_),
    7: ("int16", np.int16),
    8: ("complex64", np.complex64),
    9: ("int8", np.int8),
    10: ("float64", np.float64),
    11: ("complex128", np.complex128),
    12: ("uint64", np.uint64),
    13: ("resource", None),
    14: ("variant", None),
    15: ("uint32", np.uint32),
    16: ("uint16", np.uint16),
    17: ("int4", None),
}

# The BuiltinOperator enum of the installed schema: code -> name, every code.
BUILTIN_OPS: dict[int, str] = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}

# SparseIndexVector union of the schema -> element format of its `values` vector.
INDEX_VECTORS = {1: "i", 2: "H", 3: "B"}  # Int32Vector, Uint16Vector, Uint8Vector

CUSTOM = 32  # the BuiltinOperator of custom ops, named by their `custom_code`


class _Table:
    """One flatbuffer table: fields are looked up through its vtable."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, index: int) -> int:
        entry = 4 + 2 * index
        if entry >= self.vtable_size:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + entry)[0]

    def scalar(self, index: int, fmt: str, default=0):
        off = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _target(self, index: int) -> int | None:
        off = self._field(index)
        if not off:
            return None
        at = self.pos + off
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, index: int) -> _Table | None:
        at = self._target(index)
        return None if at is None else _Table(self.buf, at)

    def string(self, index: int) -> str:
        at = self._target(index)
        if at is None:
            return ""
        n = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4 : at + 4 + n].decode("utf-8", "replace")

    def vector(self, index: int, fmt: str) -> tuple:
        at = self._target(index)
        if at is None:
            return ()
        n = struct.unpack_from("<I", self.buf, at)[0]
        return struct.unpack_from(f"<{n}{fmt}", self.buf, at + 4)

    def bytes_vector(self, index: int) -> memoryview:
        at = self._target(index)
        if at is None:
            return memoryview(b"")
        n = struct.unpack_from("<I", self.buf, at)[0]
        return memoryview(self.buf)[at + 4 : at + 4 + n]

    def tables(self, index: int) -> list[_Table]:
        at = self._target(index)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        out = []
        for i in range(n):
            elem = at + 4 + 4 * i
            out.append(_Table(self.buf, elem + struct.unpack_from("<I", self.buf, elem)[0]))
        return out


def _model(content: bytes) -> _Table:
    """The root `Model` table of `content`, after checking the file identifier."""
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError(
            "Not a TFLite flatbuffer: the file identifier at bytes 4..8 is "
            f"{content[4:8]!r}, expected b'TFL3'."
        )
    return _Table(content, struct.unpack_from("<I", content, 0)[0])


def _builtin_code(code: _Table) -> int:
    """The BuiltinOperator of an `OperatorCode` (its deprecated int8 field or the new one)."""
    return max(code.scalar(0, "b"), code.scalar(3, "i"))


def custom_op_codes(content: bytes) -> list[str]:
    """The `custom_code`s of the custom ops a `.tflite` declares, sorted; read without
    touching its tensors, so cheap on large models."""
    content = bytes(content)
    codes = _model(content).tables(1)
    return sorted({code.string(1) for code in codes if _builtin_code(code) == CUSTOM})


def unpack_int4(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """TFLite's packed INT4 (two values per byte, the first in the low nibble) as int8."""
    nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(-1)[: int(np.prod(shape))]
    return (nibbles.astype(np.int8) ^ 8).astype(np.int8).reshape(shape) - np.int8(8)


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the main subgraph as stored in the file."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    data: np.ndarray | None  # constant data (dense), None for activations and variables
    stored_bytes: int = 0  # bytes of constant data in the file (int4 packs two per byte)
    sparsity: TensorSparsity | None = None  # how a sparse constant stores its values
    stored_values: int = 0  # values stored in the file: the non-zeros kept of a sparse one

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def is_sparse(self) -> bool:
        return self.sparsity is not None


@dataclass(frozen=True)
class OpInfo:
    """An operator of the main subgraph, with its input and output tensor indices."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TFLiteFile:
    """Reads the main subgraph of a `.tflite` model from its bytes.

    Args:
        content: The flatbuffer bytes of the model.

    Example:
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32),
        ...                           keras.layers.Dense(10)])
        >>> import pathlib
        >>> content = tfcompress.export_tflite(model, "model.tflite")
        >>> info = tfcompress.TFLiteFile(pathlib.Path("model.tflite").read_bytes())
        >>> [op.name for op in info.ops]
        ['FULLY_CONNECTED', 'FULLY_CONNECTED']
    """

    def __init__(self, content: bytes):
        content = bytes(content)
        model = _model(content)
        opcodes = []
        for code in model.tables(1):
            builtin = _builtin_code(code)
            custom = code.string(1)
            opcodes.append(custom or BUILTIN_OPS.get(builtin, f"BUILTIN_{builtin}"))
        buffers = model.tables(4)
        subgraph = model.tables(2)[0]
        self.tensors = [
            self._tensor(i, t, buffers, content) for i, t in enumerate(subgraph.tables(0))
        ]
        self.inputs = subgraph.vector(1, "i")
        self.outputs = subgraph.vector(2, "i")
        self.ops = [
            OpInfo(i, opcodes[op.scalar(0, "I")], op.vector(1, "i"), op.vector(2, "i"))
            for i, op in enumerate(subgraph.tables(3))
        ]
        self.num_subgraphs = len(model.tables(2))

    @staticmethod
    def _tensor(index: int, t: _Table, buffers: list[_Table], content: bytes) -> TensorInfo:
        type_name, np_type = TENSOR_TYPES.get(t.scalar(1, "b"), ("unknown", None))
        shape = tuple(t.vector(0, "i"))
        name = t.string(3)
        sparsity = _sparsity(t.table(6))
        data = None
        buffer_index = t.scalar(2, "I")
        stored = count = 0
        if 0 < buffer_index < len(buffers) and (np_type is not None or type_name == "int4"):
            buf = buffers[buffer_index]
            raw = buf.bytes_vector(0)
            offset, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
            if offset > 1 and size:  # models over 2 GB keep data after the flatbuffer
                raw = memoryview(content)[offset : offset + size]
            stored = len(raw)
            if stored:
                count = sparsity.stored_values if sparsity else int(np.prod(shape))
                if type_name == "int4":
                    values = unpack_int4(np.frombuffer(raw, dtype=np.uint8), (count,))
                else:
                    values = np.frombuffer(raw, dtype=np_type)
                data = _dense(name, values, shape, sparsity)
        if sparsity is not None:
            stored += sparsity.index_bytes
        quant = t.table(4)
        scale = quant.vector(2, "f") if quant else ()
        zero_point = quant.vector(3, "q") if quant else ()
        axis = quant.scalar(6, "i") if quant else 0
        return TensorInfo(
            index, name, shape, type_name, scale, zero_point, axis, data, stored, sparsity, count
        )

    def producer(self, tensor_index: int) -> OpInfo | None:
        """The op that writes `tensor_index`, or None for inputs and constants."""
        for op in self.ops:
            if tensor_index in op.outputs:
                return op
        return None

    def constant(self, tensor_index: int) -> TensorInfo | None:
        """The constant behind `tensor_index`, looking through DEQUANTIZE and DENSIFY ops.

        float16 and some dynamic-range models store weights in a narrow type and
        widen them with a DEQUANTIZE op, and sparse weights may be made dense by
        a DENSIFY op; this returns the stored tensor (its `data` dense).
        """
        if tensor_index < 0:
            return None
        tensor = self.tensors[tensor_index]
        if tensor.is_constant:
            return tensor
        op = self.producer(tensor_index)
        while op is not None and op.name in ("DEQUANTIZE", "DENSIFY"):
            source = self.tensors[op.inputs[0]]
            if source.is_constant:
                return source
            op = self.producer(source.index)
        return None


def _index_vector(dimension: _Table, type_field: int) -> np.ndarray:
    """The `array_segments` (type field 2) or `array_indices` (4) of a DimensionMetadata."""
    kind = dimension.scalar(type_field, "B")
    values = dimension.table(type_field + 1)
    if not kind or values is None:
        return np.zeros(0, np.int32)
    if kind not in INDEX_VECTORS:
        raise ValueError(f"Unknown SparseIndexVector type {kind} in a sparse tensor.")
    fmt = INDEX_VECTORS[kind]
    return np.asarray(values.vector(0, fmt), dtype=np.dtype(fmt).newbyteorder("<"))


def _sparsity(table: _Table | None) -> TensorSparsity | None:
    """A tensor's `SparsityParameters`, or None for a dense tensor."""
    if table is None:
        return None
    dimensions = table.tables(2)
    return TensorSparsity(
        traversal_order=tuple(table.vector(0, "i")),
        block_map=tuple(table.vector(1, "i")),
        formats=tuple(d.scalar(0, "b") for d in dimensions),
        dense_sizes=tuple(d.scalar(1, "i") for d in dimensions),
        segments=tuple(_index_vector(d, 2) for d in dimensions),
        indices=tuple(_index_vector(d, 4) for d in dimensions),
    )


def _dense(name: str, values: np.ndarray, shape: tuple, sparsity: TensorSparsity | None):
    """The stored `values` of tensor `name` as a dense array of `shape`."""
    try:
        if sparsity is not None:
            return sparsity.densify(values, shape)
        return values.reshape(shape).copy()
    except ValueError as error:
        raise ValueError(f"Tensor {name!r} (shape {shape}) cannot be read: {error}") from None
