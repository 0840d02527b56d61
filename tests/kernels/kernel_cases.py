"""Helpers for the delegate tests: tiny int8 models and interpreters with and without us."""

from __future__ import annotations

import collections
import os
import subprocess

import flatbuffers
import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema
from build_flags import TEST_LIBRARY_FLAGS

from tfcompress.core.blocks import BLOCK_SHAPE as BLOCK
from tfcompress.core.blocks import SPARSE_MAX_DENSITY as SPARSE_THRESHOLD
from tfcompress.export import TFLiteFile
from tfcompress.kernels import KernelDelegate, KernelsNotBuiltError, best_isa
from tfcompress.kernels.library import native

REF = litert.OpResolverType.BUILTIN_REF
XNNPACK = litert.OpResolverType.AUTO
BUILTIN = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNELS = ("reference", "dense", "sparse", "auto")
COUNTER_OF = {"reference": "reference_nodes", "dense": "dense_nodes", "sparse": "sparse_nodes"}


def _best_isa() -> str | None:
    """The best path this CPU runs; None without a built library."""
    try:
        return best_isa()
    except KernelsNotBuiltError:
        return None


def host_isas() -> list[str]:
    """Every kernel path this machine runs (portable always).

    Called while collecting tests: without a built library it answers `["portable"]`
    and lets the tests themselves fail with `KernelsNotBuiltError` (how to build).
    """
    best = _best_isa()
    if best is None:
        return ["portable"]
    return {"avx512vnni": ["portable", "avx2", "avx512vnni"], "avx2": ["portable", "avx2"]}.get(
        best, ["portable", best] if best != "portable" else ["portable"]
    )


# Where each path is checked when this CPU cannot run it.
_ELSEWHERE = {
    "avx2": "needs a CPU with AVX2",
    "avx512vnni": "needs AVX-512 VNNI (lscpu flag avx512_vnni); on other x86 CPUs test_cpp checks "
    "this kernel against the reference through SIMDe's emulation",
    "neondot": "needs an aarch64 CPU with the dot-product extension; test_cpp runs it under "
    "qemu-aarch64",
}


def isa_params() -> list:
    """Every kernel path as a test parameter; those this CPU lacks are skipped, saying why."""
    host, best = host_isas(), _best_isa()
    here = f"best here: {best}" if best else "library not built"
    return [
        pytest.param(
            isa,
            marks=()
            if isa in host
            else pytest.mark.skip(reason=f"this CPU has no {isa} path ({here}): {_ELSEWHERE[isa]}"),
        )
        for isa in ("portable", *_ELSEWHERE)
    ]


def missing_isa_params() -> list:
    """Every optional path as a parameter for tests of refusal; those this CPU has are skipped."""
    host = host_isas()
    return [
        pytest.param(
            isa,
            marks=pytest.mark.skip(reason=f"this CPU runs {isa}, so the library accepts it")
            if isa in host
            else (),
        )
        for isa in _ELSEWHERE
    ]


def _converter(model: keras.Model, dataset, per_channel: bool) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = not per_channel
    return converter.convert()


def int8_model(model: keras.Model, samples: np.ndarray, per_channel: bool = True) -> bytes:
    """Full-integer `.tflite` with int8 input and output, calibrated on `samples`."""
    return _converter(model, lambda: ([s[None]] for s in samples[:64]), per_channel)


def int8_multi_model(
    model: keras.Model, samples: dict[str, np.ndarray], per_channel: bool = True
) -> bytes:
    """Like `int8_model` for a model with several named inputs (`samples` by input name)."""
    count = min(len(v) for v in samples.values())

    def dataset():
        for i in range(min(count, 64)):
            yield {name: v[i : i + 1].astype("float32") for name, v in samples.items()}

    return _converter(model, dataset, per_channel)


def random_int8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def _interpreter(content: bytes, resolver, delegate, backend: str):
    module = litert if backend == "litert" else tf.lite
    if backend != "litert":
        resolver = getattr(tf.lite.experimental.OpResolverType, resolver.name)
    if isinstance(delegate, KernelDelegate):
        delegate = delegate.delegate
    return module.Interpreter(
        model_content=content,
        experimental_delegates=[delegate] if delegate is not None else None,
        experimental_op_resolver_type=resolver,
    )


def run(
    content: bytes,
    x: np.ndarray,
    resolver=XNNPACK,
    delegate=None,
    backend: str = "litert",
) -> np.ndarray:
    """Output of one invoke on `x` (its first dimension sets the batch).

    `delegate`: a `KernelDelegate`, a delegate object of `backend`, or None.
    """
    interpreter = _interpreter(content, resolver, delegate, backend)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def io_indices(interpreter) -> tuple[dict[str, int], dict[str, int]]:
    """Tensor index of each input and output by name: the signature's names (`output_0`,
    ...) when the model has a signature, else the tensors' own names."""
    if interpreter.get_signature_list():
        runner = interpreter.get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        return (
            {name: d["index"] for name, d in inputs.items()},
            {name: d["index"] for name, d in outputs.items()},
        )
    return (
        {d["name"]: d["index"] for d in interpreter.get_input_details()},
        {d["name"]: d["index"] for d in interpreter.get_output_details()},
    )


def run_all(
    content: bytes,
    inputs: dict[str, np.ndarray],
    resolver=XNNPACK,
    delegate=None,
    backend: str = "litert",
) -> dict[str, np.ndarray]:
    """Every output of one invoke on named inputs (names as `io_indices` gives them);
    each input is resized to its array's shape first."""
    interpreter = _interpreter(content, resolver, delegate, backend)
    input_index, output_index = io_indices(interpreter)
    assert inputs.keys() == input_index.keys(), (inputs.keys(), input_index.keys())
    for name, value in inputs.items():
        interpreter.resize_tensor_input(input_index[name], list(value.shape))
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        interpreter.set_tensor(input_index[name], value)
    interpreter.invoke()
    return {name: interpreter.get_tensor(i).copy() for name, i in output_index.items()}


def random_inputs(
    content: bytes, batch: int, seed: int, shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """Random values for every input (full int8 range, or normal floats) by name.

    Shapes are the model's with the batch set to `batch`, unless `shapes` gives
    one (without the batch) for an input name.
    """
    interpreter = litert.Interpreter(model_content=content)
    input_index, _ = io_indices(interpreter)
    tensors = {d["index"]: d for d in interpreter.get_input_details()}
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, index in sorted(input_index.items()):
        d = tensors[index]
        shape = (batch, *(shapes or {}).get(name, d["shape"][1:]))
        if d["dtype"] == np.int8:
            inputs[name] = rng.integers(-128, 128, size=shape, dtype=np.int8)
        else:
            inputs[name] = rng.normal(size=shape).astype(d["dtype"])
    return inputs


def block_mask(n: int, k: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """[n][k] 0/1 mask made of whole 16x4 blocks, each kept with probability `density`."""
    rows, cols = -(-n // BLOCK[0]), -(-k // BLOCK[1])
    blocks = rng.random((rows, cols)) < density
    blocks.flat[rng.integers(blocks.size)] = True  # never all zero
    return np.repeat(np.repeat(blocks, BLOCK[0], 0), BLOCK[1], 1)[:n, :k]


def set_block_sparse(layer: keras.layers.Layer, density: float, rng: np.random.Generator):
    """Zeroes whole 16x4 blocks of a built Dense/Conv2D kernel, seen as TFLite stores it.

    TFLite FULLY_CONNECTED weights are [out][in] (the Keras kernel transposed),
    CONV_2D filters [out][kh][kw][in], flattened to [out][kh * kw * in] by the kernels.
    Also gives the layer a random non-zero bias, if it has one.
    """
    kernel = layer.kernel.numpy()
    stored = np.moveaxis(kernel, -1, 0)  # [out, ..., in]
    matrix = stored.reshape(stored.shape[0], -1)
    if density < 1:
        matrix = matrix * block_mask(*matrix.shape, density, rng)
    layer.kernel.assign(np.moveaxis(matrix.reshape(stored.shape), 0, -1))
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype("float32"))


def block_density(matrix: np.ndarray) -> float:
    """Fraction of 16x4 blocks of an [n][k] matrix holding a non-zero (as the library counts)."""
    n, k = matrix.shape
    rows, cols = -(-n // BLOCK[0]), -(-k // BLOCK[1])
    padded = np.zeros((rows * BLOCK[0], cols * BLOCK[1]), dtype=bool)
    padded[:n, :k] = matrix != 0
    nonzero = padded.reshape(rows, BLOCK[0], cols, BLOCK[1]).any(axis=(1, 3))
    return float(np.count_nonzero(nonzero)) / (rows * cols)


def weight_matrices(content: bytes) -> list[tuple[str, np.ndarray]]:
    """(op name, [n][k] int8 weights) of every FULLY_CONNECTED and CONV_2D in the file."""
    info = TFLiteFile(content)
    found = []
    for op in info.ops:
        if op.name in ("FULLY_CONNECTED", "CONV_2D"):
            data = info.tensors[op.inputs[1]].data
            found.append((op.name, None if data is None else data.reshape(data.shape[0], -1)))
    return found


def expected_sparse(content: bytes) -> tuple[int, int]:
    """(layers, layers that kernel="auto" runs block-sparse) of a model's int8 FC/CONV_2D."""
    matrices = [m for _, m in weight_matrices(content)]
    return len(matrices), sum(block_density(m) <= SPARSE_THRESHOLD for m in matrices)


def check_counters(counters: dict[str, int], kernel: str, layers: int, sparse: int) -> None:
    """Every layer claimed (possibly several times over) with the kernel asked for."""
    claimed = counters["nodes_claimed"]
    assert claimed > 0 and claimed % layers == 0, counters
    times = claimed // layers  # resizing inputs re-applies the delegate
    assert counters["nodes_declined"] == 0 and counters["declined_all"] == 0, counters
    assert counters["invocations"] > 0, counters
    kinds = {c: counters[c] for c in COUNTER_OF.values()}
    if kernel == "auto":
        expected = {"reference_nodes": 0, "sparse_nodes": sparse, "dense_nodes": layers - sparse}
    else:
        expected = {c: layers if c == COUNTER_OF[kernel] else 0 for c in COUNTER_OF.values()}
    assert kinds == {c: times * v for c, v in expected.items()}, counters


def check_nodes(nodes: list, content: bytes, kernel: str, isa: str) -> None:
    """`KernelDelegate.nodes()` agrees with the file: every int8 FC/CONV_2D claimed (as often
    as the counters count it) with its op, [n][k] shape and block density, the kernel asked
    for (`auto`: by block density) and the ISA (none for the reference kernel)."""
    expected = collections.Counter()
    for op, matrix in weight_matrices(content):
        density = block_density(matrix)
        chosen = (
            kernel if kernel != "auto" else "sparse" if density <= SPARSE_THRESHOLD else "dense"
        )
        expected[(op, *matrix.shape, density, chosen, None if chosen == "reference" else isa)] += 1
    got = collections.Counter((n.op, n.n, n.k, n.block_density, n.kernel, n.isa) for n in nodes)
    times = len(nodes) // sum(expected.values())
    assert times > 0 and got == collections.Counter({c: times * v for c, v in expected.items()}), (
        got,
        expected,
    )


def raw_counters(library: str, delegate) -> dict[str, int]:
    """Counters of a delegate object loaded without `KernelDelegate` (e.g. by tf.lite)."""
    lib = native(library)
    pointer = delegate._get_native_delegate_pointer()
    return {
        lib.tfc_counter_name(i).decode(): int(lib.tfc_delegate_counter(pointer, i))
        for i in range(lib.tfc_counter_count())
    }


def compile_library(out: str, defines: tuple[str, ...] = ()) -> str:
    """Builds kernels/src/*.cc into a shared library at `out` with g++ (test builds)."""
    src = os.path.join(ROOT, "kernels", "src")
    sources = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".cc"))
    cmd = ["g++", *TEST_LIBRARY_FLAGS, *(f"-D{d}" for d in defines), *sources, "-o", out]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out


def bazel_library() -> str | None:
    """The Bazel-built library, when `bazel build //kernels:tfcompress_kernels` has run."""
    path = os.path.join(ROOT, "bazel-bin", "kernels", "libtfcompress_kernels.so")
    return path if os.path.isfile(path) else None


def single_layer_outputs(content: bytes) -> list[str]:
    """Outputs computed by one FULLY_CONNECTED/CONV_2D straight from a model input."""
    info = TFLiteFile(content)
    _, outputs = io_indices(litert.Interpreter(model_content=content))
    names = []
    for name, index in outputs.items():
        op = info.producer(index)
        if op is not None and op.name in ("FULLY_CONNECTED", "CONV_2D"):
            if op.inputs[0] in info.inputs:
                names.append(name)
    return sorted(names)


def _only_op(model: schema.ModelT) -> tuple[schema.OperatorT, list[schema.TensorT]]:
    graph = model.subgraphs[0]
    assert len(graph.operators) == 1, len(graph.operators)
    return graph.operators[0], graph.tensors


def with_scales(
    content: bytes,
    input: float | None = None,
    weights: float | None = None,
    output: float | None = None,
) -> bytes:
    """A copy of a one-layer int8 model with its input, weight (every channel) or output
    scale replaced; the bias scale follows input * weight scale, as the converter sets it."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    op, tensors = _only_op(model)
    x, w, y = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
    if input is not None:
        x.quantization.scale = [input]
    if weights is not None:
        w.quantization.scale = [weights] * len(w.quantization.scale)
    if output is not None:
        y.quantization.scale = [output]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        x_scale = np.float32(x.quantization.scale[0])
        scales = np.float32(w.quantization.scale) * x_scale
        tensors[op.inputs[2]].quantization.scale = [float(v) for v in scales]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def accumulator_bounds(content: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(bound on |accumulator|, input scale * weight scale) per output channel of a one-layer
    int8 model: the bound is 255 * sum |w| + |bias|, as the delegate computes it."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    op, tensors = _only_op(model)
    x, w = tensors[op.inputs[0]], tensors[op.inputs[1]]
    n = w.shape[0]
    weights = np.frombuffer(bytes(model.buffers[w.buffer].data), np.int8).reshape(n, -1)
    bound = 255.0 * np.abs(weights.astype(np.int64)).sum(axis=1)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = np.frombuffer(bytes(model.buffers[tensors[op.inputs[2]].buffer].data), np.int32)
        bound += np.abs(bias.astype(np.float64))
    w_scales = np.broadcast_to(np.float64(np.float32(w.quantization.scale)), (n,))
    return bound, np.float64(np.float32(x.quantization.scale[0])) * w_scales
