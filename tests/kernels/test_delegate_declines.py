"""What the delegate does not run: it declines cleanly, and the model runs as without it.

Also the option checks of `KernelDelegate` and of the library itself, a missing
library, and a test build whose struct layout deliberately disagrees with the
interpreter's (the run-time plausibility checks must then claim nothing).
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from kernel_cases import (
    BUILTIN,
    REF,
    XNNPACK,
    accumulator_bounds,
    compile_library,
    host_isas,
    int8_model,
    int8_multi_model,
    io_indices,
    missing_isa_params,
    random_inputs,
    run_all,
    with_scales,
)

from tfcompress.export import TFLiteFile, export_tflite
from tfcompress.kernels import KernelDelegate, KernelsNotBuiltError, library_path

NO_CLAIMS = {
    "nodes_claimed": 0,
    "partitions": 0,
    "invocations": 0,
    "dense_nodes": 0,
    "sparse_nodes": 0,
    "reference_nodes": 0,
    "nodes_left": 0,
}


def op_names(content: bytes) -> list[str]:
    return [op["op_name"] for op in litert.Interpreter(model_content=content)._get_ops_details()]


def assert_runs_as_without(
    content: bytes, inputs: dict[str, np.ndarray], resolvers=(REF, XNNPACK), **options
) -> dict:
    """Same outputs with and without a `KernelDelegate(**options)`, with the reference
    kernels and with XNNPACK; returns the counters (the same for both)."""
    counters = []
    for resolver in resolvers:
        delegate = KernelDelegate(**{"nodes": "all", **options})
        want = run_all(content, inputs, resolver)
        got = run_all(content, inputs, resolver, delegate)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].dtype == want[name].dtype
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{resolver} {name}")
        counters.append(delegate.counters())
    assert counters[0] == counters[1]
    return counters[0]


def test_float32_model_is_declined() -> None:
    keras.utils.set_random_seed(0)
    x = keras.Input((9, 9, 3))
    y = keras.layers.Conv2D(8, 3, activation="relu")(x)
    y = keras.layers.Dense(5)(keras.layers.Flatten()(y))
    content = export_tflite(keras.Model(x, y))
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(op_names(content))
    counters = assert_runs_as_without(content, random_inputs(content, 3, seed=0))
    # Both float layers are FC/CONV_2D that the delegate looked at and declined (not int8).
    assert counters == {**NO_CLAIMS, "nodes_declined": 2, "declined_all": 0}


@pytest.mark.parametrize("mode", ["dynamic", "int16x8", "float16"])
def test_other_quantization_modes_are_declined(mode: str) -> None:
    """Float activations with int8 weights, int16 activations, float16 weights (widened
    by a DEQUANTIZE, so not constant): none is an int8 layer."""
    keras.utils.set_random_seed(10)
    x = keras.Input((6, 6, 2))
    y = keras.layers.Conv2D(8, 3, activation="relu")(x)
    y = keras.layers.Dense(5)(keras.layers.Flatten()(y))
    samples = np.random.default_rng(10).normal(size=(32, 6, 6, 2)).astype("float32")
    content = export_tflite(keras.Model(x, y), mode=mode, representative_data=samples)
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(op_names(content))
    counters = assert_runs_as_without(content, random_inputs(content, 2, seed=10))
    assert counters == {**NO_CLAIMS, "nodes_declined": 2, "declined_all": 0}


def test_int8_model_without_supported_ops() -> None:
    keras.utils.set_random_seed(1)
    x = keras.Input((12, 10, 6))
    y = keras.layers.Conv2DTranspose(4, 3, padding="same", activation="relu")(x)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.AveragePooling2D(2)(y)
    samples = np.random.default_rng(1).normal(size=(32, 12, 10, 6)).astype("float32")
    content = int8_model(keras.Model(x, y), samples)
    ops = op_names(content)
    assert "TRANSPOSE_CONV" in ops, ops
    assert not {"CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"} & set(ops), ops
    counters = assert_runs_as_without(content, random_inputs(content, 2, seed=1))
    # Other ops are not even counted as declined.
    assert counters == {**NO_CLAIMS, "nodes_declined": 0, "declined_all": 0}


class _MatMuls(tf.Module):
    """x @ b^T with b a model input (a FULLY_CONNECTED whose weights are not constant),
    optionally followed by a matmul with constant weights."""

    def __init__(self, constant_too: bool):
        super().__init__()
        self.w = tf.constant(np.random.default_rng(2).normal(size=(9, 5)).astype("float32"))
        self.constant_too = constant_too

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, 12), tf.float32, name="x"),
            tf.TensorSpec((9, 12), tf.float32, name="b"),
        ]
    )
    def __call__(self, x, b):
        h = tf.matmul(x, b, transpose_b=True)
        return tf.matmul(h, self.w) if self.constant_too else h


def _int8_function(module: tf.Module) -> bytes:
    rng = np.random.default_rng(3)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.normal(size=(1, 12)).astype("float32"), rng.normal(size=(9, 12)).astype("float32")]
        for _ in range(32)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.mark.parametrize("constant_too", [False, True])
def test_fully_connected_with_non_constant_weights(constant_too: bool) -> None:
    content = _int8_function(_MatMuls(constant_too))
    interpreter = litert.Interpreter(model_content=content)
    model_inputs = {d["index"] for d in interpreter.get_input_details()}
    fcs = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    info = TFLiteFile(content)
    runtime = [op for op in fcs if op["inputs"][1] in model_inputs]
    constant = [op for op in fcs if info.tensors[op["inputs"][1]].is_constant]
    assert len(runtime) == 1 and len(constant) == int(constant_too), fcs
    rng = np.random.default_rng(4)
    inputs = {
        "x": rng.integers(-128, 128, (4, 12), dtype=np.int8),
        "b": rng.integers(-128, 128, (9, 12), dtype=np.int8),
    }
    counters = assert_runs_as_without(content, inputs)
    assert counters["nodes_declined"] == 1 and counters["declined_all"] == 0, counters
    if constant_too:  # the other layer is still ours
        assert counters["nodes_claimed"] == 1 and counters["invocations"] > 0, counters
    else:
        assert counters == {**NO_CLAIMS, "nodes_declined": 1, "declined_all": 0}


def test_keras_matmul_of_two_inputs_is_batch_matmul() -> None:
    """Keras' own matmul of two inputs never becomes a FULLY_CONNECTED: the converter
    emits BATCH_MATMUL, which the delegate does not look at."""
    a, b = keras.Input((7, 12), name="a"), keras.Input((12, 9), name="b")
    rng = np.random.default_rng(5)
    samples = {"a": rng.normal(size=(32, 7, 12)), "b": rng.normal(size=(32, 12, 9))}
    content = int8_multi_model(keras.Model([a, b], keras.ops.matmul(a, b)), samples)
    assert op_names(content) == ["BATCH_MATMUL"]
    counters = assert_runs_as_without(content, random_inputs(content, 3, seed=5))
    assert counters == {**NO_CLAIMS, "nodes_declined": 0, "declined_all": 0}


def test_dynamic_height_and_width_are_declined() -> None:
    keras.utils.set_random_seed(6)
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(4, 1)(y)
    samples = np.random.default_rng(6).normal(size=(32, 8, 8, 3)).astype("float32")
    content = int8_model(keras.Model(x, y), samples)
    details = litert.Interpreter(model_content=content).get_input_details()[0]
    assert list(details["shape_signature"]) == [-1, -1, -1, 3]  # the converter keeps them
    (name,) = io_indices(litert.Interpreter(model_content=content))[0]
    for shape in [(10, 13, 3), (5, 7, 3)]:
        inputs = random_inputs(content, 2, seed=7, shapes={name: shape})
        counters = assert_runs_as_without(content, inputs)
        assert counters == {**NO_CLAIMS, "nodes_declined": 2, "declined_all": 0}


def test_dense_on_a_computed_shape_is_declined() -> None:
    """Dense on a [batch, 5, 23] input with a dynamic batch: the converter reshapes to a
    computed [-1, -1] shape (a Tensordot), which the delegate declines as dynamic."""
    keras.utils.set_random_seed(8)
    x = keras.Input((5, 23))
    samples = np.random.default_rng(8).normal(size=(32, 5, 23)).astype("float32")
    content = int8_model(keras.Model(x, keras.layers.Dense(13)(x)), samples)
    assert op_names(content).count("FULLY_CONNECTED") == 1
    counters = assert_runs_as_without(content, random_inputs(content, 3, seed=8))
    assert counters == {**NO_CLAIMS, "nodes_declined": 1, "declined_all": 0}


def test_grouped_convolution_is_declined() -> None:
    keras.utils.set_random_seed(11)
    x = keras.Input((9, 9, 4))
    samples = np.random.default_rng(11).normal(size=(32, 9, 9, 4)).astype("float32")
    content = int8_model(keras.Model(x, keras.layers.Conv2D(8, 3, groups=2)(x)), samples)
    assert op_names(content) == ["CONV_2D"]  # filter [8, 3, 3, 2] on 4 input channels
    counters = assert_runs_as_without(content, random_inputs(content, 2, seed=11))
    assert counters == {**NO_CLAIMS, "nodes_declined": 1, "declined_all": 0}


def test_tflite_sparse_weights_are_declined() -> None:
    """The converter's own sparse format (EXPERIMENTAL_SPARSITY) stores the weights
    compressed and widens them with a DENSIFY op: FULLY_CONNECTED weights that are not
    constant tensors."""
    keras.utils.set_random_seed(12)
    rng = np.random.default_rng(12)
    x = keras.Input((64,))
    dense = keras.layers.Dense(48)
    model = keras.Model(x, dense(x))
    kernel = dense.kernel.numpy()
    dense.kernel.assign(np.where(rng.random(kernel.shape) < 0.9, 0, kernel))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    converter.representative_dataset = lambda: (
        [rng.normal(size=(1, 64)).astype("float32")] for _ in range(32)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    content = converter.convert()
    assert op_names(content) == ["DENSIFY", "FULLY_CONNECTED"]
    # XNNPACK fails to prepare this model even without our delegate (TFLite's own issue).
    inputs = random_inputs(content, 3, seed=12)
    counters = assert_runs_as_without(content, inputs, resolvers=(REF, BUILTIN))
    assert counters == {**NO_CLAIMS, "nodes_declined": 1, "declined_all": 0}


@pytest.fixture(scope="module")
def one_layer() -> dict[tuple[str, bool], bytes]:
    """A Dense and a Conv2D int8 model, per channel and per tensor, by (op, per_channel)."""
    models = {}
    for op in ("FULLY_CONNECTED", "CONV_2D"):
        keras.utils.set_random_seed(13)
        shape = (32,) if op == "FULLY_CONNECTED" else (6, 6, 3)
        x = keras.Input(shape)
        layer = keras.layers.Dense(16) if op == "FULLY_CONNECTED" else keras.layers.Conv2D(8, 3)
        samples = np.random.default_rng(13).normal(size=(32, *shape)).astype("float32")
        for per_channel in (True, False):
            models[op, per_channel] = int8_model(keras.Model(x, layer(x)), samples, per_channel)
    return models


def run_or_error(content: bytes, inputs: dict[str, np.ndarray], resolver, delegate=None):
    """The outputs, or the message of the error the interpreter raises instead."""
    try:
        return run_all(content, inputs, resolver, delegate)
    except (RuntimeError, ValueError) as error:
        return str(error)


def assert_declined(content: bytes, inputs: dict[str, np.ndarray]) -> None:
    """The one layer is declined, and the interpreter runs it (or rejects the model) with
    our delegate as it does without it, with the reference kernels and with XNNPACK."""
    for resolver in (REF, XNNPACK):
        delegate = KernelDelegate(nodes="all")
        want = run_or_error(content, inputs, resolver)
        got = run_or_error(content, inputs, resolver, delegate)
        if isinstance(want, str):
            # Rejected either way (with XNNPACK, the node that reports it may differ).
            assert isinstance(got, str) and (got == want or resolver == XNNPACK), (got, want)
        else:
            assert not isinstance(got, str), got
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{resolver} {name}")
        assert delegate.nodes() == []
        counters = delegate.counters()
        assert counters["nodes_claimed"] == 0 and counters["nodes_declined"] >= 1, counters


OUT_OF_RANGE = [
    ("weights", 0.0),
    ("weights", -0.01),
    ("weights", float("nan")),
    ("weights", float("inf")),
    ("weights", 1e-40),  # denormal
    ("weights", 1e6),
    ("input", 0.0),
    ("input", 1e-40),
    ("input", float("inf")),
    ("output", 0.0),
    ("output", 1e-45),
    ("output", -0.02),
    ("output", float("nan")),
]


@pytest.mark.parametrize(("tensor", "scale"), OUT_OF_RANGE)
@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV_2D"])
def test_out_of_range_scales_are_declined(
    one_layer: dict, op: str, tensor: str, scale: float
) -> None:
    for per_channel in (True, False):
        content = with_scales(one_layer[op, per_channel], **{tensor: scale})
        assert_declined(content, random_inputs(content, 3, seed=13))


def extreme_inputs(content: bytes, seed: int) -> dict[str, np.ndarray]:
    """Inputs of only -128 and 127: the accumulators' widest swings."""
    inputs = random_inputs(content, 4, seed=seed)
    rng = np.random.default_rng(seed)
    return {
        k: np.where(rng.random(v.shape) < 0.5, -128, 127).astype(np.int8) for k, v in inputs.items()
    }


def with_multiplier(content: bytes, largest: float, bounded: bool) -> tuple[bytes, float]:
    """`content` with the output scale set so that the largest multiplier (times the
    accumulator bound + 1 if `bounded`) is about `largest`; also that value exactly."""
    bound, product = accumulator_bounds(content)
    factor = (bound + 1) * product if bounded else product
    output = np.float32(np.max(factor) / largest)
    return with_scales(content, output=float(output)), float(np.max(factor) / np.float64(output))


LIMIT = 2.0**30  # the delegate claims (bound + 1) * multiplier < 2^30


@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV_2D"])
def test_multipliers_at_the_limits_claimed_bit_exact_or_declined(one_layer: dict, op: str) -> None:
    """Just below the largest multiplier we claim, every kernel and ISA equals BUILTIN_REF
    bit for bit (on inputs that swing the accumulators widest); just above, the node is
    declined. Multipliers TFLite flushes to zero (below 2^-31) and the smallest it keeps
    (shift -31) are claimed and exact too."""
    for per_channel in (True, False):
        base = one_layer[op, per_channel]
        below, value = with_multiplier(base, LIMIT * (1 - 1e-4), bounded=True)
        assert value < LIMIT
        above, value = with_multiplier(base, LIMIT * (1 + 1e-4), bounded=True)
        assert value >= LIMIT
        assert_declined(above, extreme_inputs(above, seed=14))
        tiny = [with_multiplier(base, 0.75 * 2.0**e, bounded=False)[0] for e in (-31, -33)]
        for content in (below, *tiny):
            inputs = extreme_inputs(content, seed=14)
            want = run_all(content, inputs, REF)
            for isa in host_isas():
                for kernel in ("reference", "dense", "sparse"):
                    delegate = KernelDelegate(kernel=kernel, isa=isa, nodes="all")
                    got = run_all(content, inputs, REF, delegate)
                    assert [n.op for n in delegate.nodes()] == [op]
                    for name in want:
                        np.testing.assert_array_equal(got[name], want[name], err_msg=kernel + isa)


@pytest.mark.parametrize(
    ("op", "shape"),
    [
        ("FULLY_CONNECTED", (2, 33)),  # two rows of 32, one value unused
        ("FULLY_CONNECTED", (1, 16)),  # no whole row: an empty output
        ("CONV_2D", (1, 2, 2, 3)),  # smaller than the 3x3 filter: an empty output
    ],
)
def test_input_shapes_the_interpreter_accepts_run_as_without(
    one_layer: dict, op: str, shape: tuple[int, ...]
) -> None:
    """TFLite's FULLY_CONNECTED takes whole rows of k values from any input, and a
    convolution may have an empty output; with our delegate the same (they used to fail
    in the delegate's Prepare)."""
    content = one_layer[op, True]
    rng = np.random.default_rng(15)
    inputs = {
        name: rng.integers(-128, 128, size=shape, dtype=np.int8)
        for name in random_inputs(content, 1, seed=15)
    }
    want = run_all(content, inputs, REF)
    delegate = KernelDelegate(nodes="all")
    got = run_all(content, inputs, REF, delegate)
    assert [n.op for n in delegate.nodes()] == [op]
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_array_equal(got[name], want[name])


@pytest.fixture(scope="module")
def mismatched_library(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("g++") is None:
        pytest.skip("g++ not found; install the Debian package g++")
    out = tmp_path_factory.mktemp("abi") / "libtfcompress_kernels_mismatch.so"
    return compile_library(str(out), defines=("TFC_TEST_ABI_MISMATCH",))


def test_mismatched_struct_layout_claims_nothing(mismatched_library: str) -> None:
    keras.utils.set_random_seed(9)
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(16, 3, activation="relu")(x)
    y = keras.layers.Dense(10)(keras.layers.Flatten()(y))
    samples = np.random.default_rng(9).normal(size=(32, 8, 8, 3)).astype("float32")
    content = int8_model(keras.Model(x, y), samples)
    inputs = random_inputs(content, 2, seed=9)
    # The proper library claims both layers of this model...
    proper = KernelDelegate(nodes="all")
    run_all(content, inputs, REF, proper)
    assert proper.counters()["nodes_claimed"] == 2
    # ...the mismatched build sees implausible tensors and claims nothing.
    assert KernelDelegate(library=mismatched_library).library == mismatched_library
    counters = assert_runs_as_without(content, inputs, library=mismatched_library)
    assert counters["declined_all"] == 1, counters
    assert counters == {**NO_CLAIMS, "nodes_declined": 0, "declined_all": 1}


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"kernel": "fast"}, "kernel"),
        ({"isa": "bogus"}, "isa"),
        ({"num_threads": 0}, "num_threads"),
        ({"num_threads": -2}, "num_threads"),
        ({"num_threads": 1.0}, "num_threads"),
        ({"num_threads": True}, "num_threads"),
    ],
)
def test_bad_options_raise_value_error(options: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=f"`{argument}`.*{argument}="):
        KernelDelegate(**options)


@pytest.mark.parametrize("isa", missing_isa_params())
def test_isa_the_cpu_lacks_is_refused_by_the_library(isa: str) -> None:
    # The Python check passes (a known name); the library refuses, and LiteRT raises.
    with pytest.raises(ValueError, match=f"isa '{isa}' is not supported by this CPU"):
        KernelDelegate(isa=isa)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bogus": "1"}, "unknown option 'bogus'"),
        ({"num_threads": "300"}, "num_threads must be an integer from 1 to 256, got '300'"),
        ({"num_threads": "2x"}, "num_threads must be an integer"),
        ({"verbose": "maybe"}, "verbose must be true or false"),
        ({"kernel": "fast"}, "kernel must be auto, dense, sparse or reference, got 'fast'"),
        ({"isa": "sse"}, "isa must be auto, portable, avx2, avx512vnni or neondot, got 'sse'"),
    ],
)
def test_library_refuses_bad_options(options: dict, message: str) -> None:
    """The library checks options itself (for callers that load it without Python's checks)."""
    with pytest.raises(ValueError, match=message):
        litert.load_delegate(library_path(), options)


def test_missing_library_says_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFCOMPRESS_KERNELS_LIBRARY", "/nonexistent/libtfcompress_kernels.so")
    with pytest.raises(KernelsNotBuiltError, match="pip install -e .") as error:
        library_path()
    assert "/nonexistent/libtfcompress_kernels.so" in str(error.value)
    assert "bazel build //kernels:tfcompress_kernels" in str(error.value)
    assert isinstance(error.value, ImportError)
    with pytest.raises(KernelsNotBuiltError):
        KernelDelegate()
