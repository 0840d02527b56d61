"""Single int8 layers through the delegate: bit-exact against TFLite's reference kernels.

Each converted model holds many independent layers (one model input and one
output per layer, plus a chain of three Dense layers whose inner tensors live
only inside the delegate's partition), so one conversion covers many shapes.
Weights are zeroed in whole 16x4 blocks (as TFLite stores them: FC [out][in],
CONV_2D [out][kh][kw][in]) at random densities, so that `kernel="auto"` picks
the block-sparse kernel for some layers and the dense one for others. Every
kernel choice runs on every kernel path (ISA) this CPU has.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np
import pytest
import tensorflow as tf
from kernel_cases import (
    KERNELS,
    REF,
    XNNPACK,
    check_counters,
    check_nodes,
    expected_sparse,
    int8_multi_model,
    isa_params,
    random_inputs,
    raw_counters,
    run_all,
    set_block_sparse,
    single_layer_outputs,
)

from tfcompress.kernels import KernelDelegate, library_path

DENSITIES = (1.0, 0.9, 0.6, 0.3, 0.1)  # chance of keeping each 16x4 block
ACTIVATIONS = (None, "relu", "relu6")
BATCHES = {"fc": (1, 5, 64), "conv": (1, 2, 3)}


@dataclass(frozen=True)
class FcCase:
    inputs: int
    units: int
    activation: str | None
    bias: bool
    density: float


@dataclass(frozen=True)
class ConvCase:
    height: int
    width: int
    channels: int
    filters: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilation: tuple[int, int]
    padding: str
    activation: str | None
    bias: bool
    density: float


def fc_cases(seed: int) -> list[FcCase]:
    """Edge shapes, then random ones with 1..300 inputs and outputs."""
    cases = [
        FcCase(1, 1, None, True, 1.0),
        FcCase(3, 17, "relu", False, 1.0),
        FcCase(300, 300, "relu", True, 0.2),
        FcCase(64, 16, "relu6", True, 0.3),
        FcCase(299, 1, None, False, 1.0),
    ]
    rng = np.random.default_rng(seed)
    for _ in range(10):
        k, n = (int(v) for v in rng.integers(1, 301, size=2))
        activation, bias = ACTIVATIONS[rng.integers(3)], bool(rng.integers(2))
        cases.append(FcCase(k, n, activation, bias, float(rng.choice(DENSITIES))))
    return cases


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.isscalar(value) else tuple(int(v) for v in value)


def conv_cases(seed: int) -> list[ConvCase]:
    """1x1 convolutions first (direct and strided), fixed edge cases, then random ones."""
    cases = [
        ConvCase(9, 7, 3, 5, (1, 1), (1, 1), (1, 1), "valid", None, True, 1.0),
        ConvCase(8, 8, 16, 32, (1, 1), (1, 1), (1, 1), "same", "relu", False, 0.3),
        ConvCase(11, 6, 5, 7, (1, 1), (2, 2), (1, 1), "valid", "relu6", True, 1.0),
        ConvCase(13, 11, 1, 32, (3, 3), (1, 1), (1, 1), "valid", "relu", True, 1.0),
        ConvCase(13, 9, 7, 33, (3, 3), (1, 1), (1, 1), "same", None, True, 0.4),
        ConvCase(10, 12, 4, 16, (5, 3), (2, 1), (1, 1), "same", "relu", False, 0.2),
        ConvCase(15, 11, 6, 9, (3, 3), (1, 1), (2, 2), "valid", "relu6", True, 0.5),
        ConvCase(7, 9, 3, 20, (3, 5), (1, 1), (2, 1), "same", None, False, 1.0),
        ConvCase(5, 5, 8, 17, (5, 5), (3, 3), (1, 1), "valid", "relu", True, 0.3),
    ]
    rng = np.random.default_rng(seed)
    while len(cases) < 21:
        kernel = _pair([1, 3, (5, 3), (3, 5), (1, 3), (2, 2)][rng.integers(6)])
        strides, dilation = _pair([1, 2, 3, (2, 1), (1, 3)][rng.integers(5)]), (1, 1)
        if strides == (1, 1) and rng.random() < 0.5:
            dilation = _pair([2, (2, 1), (1, 3)][rng.integers(3)])
        h, w = (int(v) for v in rng.integers(4, 18, size=2))
        channels, filters = int(rng.integers(1, 22)), int(rng.integers(1, 48))
        padding = "same" if rng.integers(2) else "valid"
        reach = [(kk - 1) * d + 1 for kk, d in zip(kernel, dilation)]
        if padding == "valid" and (h < reach[0] or w < reach[1]):
            continue
        activation, bias = ACTIVATIONS[rng.integers(3)], bool(rng.integers(2))
        geometry = (h, w, channels, filters, kernel, strides, dilation, padding)
        cases.append(ConvCase(*geometry, activation, bias, float(rng.choice(DENSITIES))))
    return cases


@functools.cache
def fc_keras_model(seed: int = 11) -> tuple[keras.Model, dict[str, np.ndarray]]:
    """One Dense per input (dynamic batch), two on rank-3/4 inputs, and a chain of three."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs, outputs, layers = [], [], []

    def branch(name, shape, units, activation, bias, density, batch_size=None):
        x = keras.Input(shape, batch_size=batch_size, name=name)
        layer = keras.layers.Dense(units, activation=activation, use_bias=bias)
        inputs.append(x)
        outputs.append(layer(x))
        layers.append((layer, density))

    for i, c in enumerate(fc_cases(seed)):
        branch(f"fc{i}", (c.inputs,), c.units, c.activation, c.bias, c.density)
    # A fixed batch keeps these one FULLY_CONNECTED with keep_num_dims (a dynamic one
    # becomes a Tensordot whose computed reshape the delegate declines).
    branch("rank3", (5, 23), 13, "relu", True, 1.0, batch_size=1)
    branch("rank4", (3, 4, 6), 11, None, False, 1.0, batch_size=1)
    x = keras.Input((97,), name="chain")
    inputs.append(x)
    chain = [(150, "relu", True, 0.3), (33, None, False, 1.0), (70, "relu6", True, 0.5)]
    for units, activation, bias, density in chain:
        layer = keras.layers.Dense(units, activation=activation, use_bias=bias)
        x = layer(x)
        layers.append((layer, density))
    outputs.append(x)
    model = keras.Model(inputs, outputs)
    for layer, density in layers:
        set_block_sparse(layer, density, rng)
    samples = {t.name: rng.normal(size=(64, *t.shape[1:])).astype("float32") for t in inputs}
    return model, samples


@functools.cache
def conv_keras_model(seed: int = 12) -> tuple[keras.Model, dict[str, np.ndarray]]:
    """One Conv2D per input. Dilated ones get a fixed batch: with a dynamic batch the
    converter rewrites them as SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs, outputs, layers = [], [], []
    for i, c in enumerate(conv_cases(seed)):
        batch_size = 1 if c.dilation != (1, 1) else None
        x = keras.Input((c.height, c.width, c.channels), batch_size=batch_size, name=f"conv{i}")
        layer = keras.layers.Conv2D(
            c.filters,
            c.kernel,
            strides=c.strides,
            dilation_rate=c.dilation,
            padding=c.padding,
            activation=c.activation,
            use_bias=c.bias,
        )
        inputs.append(x)
        outputs.append(layer(x))
        layers.append((layer, c.density))
    model = keras.Model(inputs, outputs)
    for layer, density in layers:
        set_block_sparse(layer, density, rng)
    samples = {t.name: rng.normal(size=(64, *t.shape[1:])).astype("float32") for t in inputs}
    return model, samples


MODELS = ["fc/per-channel", "fc/per-tensor", "conv/per-channel", "conv/per-tensor"]


@dataclass
class Converted:
    kind: str
    content: bytes
    layers: int
    sparse: int
    batches: tuple[int, ...]

    @functools.cached_property
    def cases(self) -> list[tuple[dict, dict]]:
        """(inputs, reference outputs) for each batch size."""
        cases = []
        for batch in self.batches:
            x = random_inputs(self.content, batch, seed=batch)
            cases.append((x, run_all(self.content, x, REF)))
        return cases


@pytest.fixture(scope="module", params=MODELS)
def converted(request) -> Converted:
    kind, quantization = request.param.split("/")
    model, samples = (fc_keras_model if kind == "fc" else conv_keras_model)()
    content = int8_multi_model(model, samples, per_channel=quantization == "per-channel")
    layers, sparse = expected_sparse(content)
    kinds = (keras.layers.Dense, keras.layers.Conv2D)
    assert layers == sum(isinstance(layer, kinds) for layer in model.layers)
    # Both kernels of kernel="auto" are exercised.
    assert 2 <= sparse <= layers - 2, (sparse, layers)
    return Converted(kind, content, layers, sparse, BATCHES[kind])


def assert_equal_outputs(got: dict, want: dict, what: str) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, (what, name)
        diff = np.flatnonzero(got[name] != want[name])
        if diff.size:
            first = diff[0]
            raise AssertionError(
                f"{what}: {name} differs in {diff.size} of {want[name].size} values, first "
                f"at flat index {first}: {got[name].flat[first]} != {want[name].flat[first]}"
            )


@pytest.mark.parametrize("isa", isa_params())
@pytest.mark.parametrize("kernel", KERNELS)
def test_bit_exact_with_reference_kernels(converted: Converted, kernel: str, isa: str) -> None:
    for x, want in converted.cases:
        delegate = KernelDelegate(kernel=kernel, isa=isa, nodes="all")
        got = run_all(converted.content, x, REF, delegate)
        batch = next(iter(x.values())).shape[0]
        assert_equal_outputs(got, want, f"kernel={kernel} isa={isa} batch={batch}")
        assert delegate.isa == isa
        check_counters(delegate.counters(), kernel, converted.layers, converted.sparse)
        check_nodes(delegate.nodes(), converted.content, kernel, isa)


@pytest.mark.parametrize("kernel", KERNELS)
def test_within_one_lsb_of_xnnpack(converted: Converted, kernel: str) -> None:
    single = single_layer_outputs(converted.content)
    assert len(single) >= converted.layers - 3  # all but the chain
    for x, want in converted.cases:
        xnnpack = run_all(converted.content, x, XNNPACK)
        delegate = KernelDelegate(kernel=kernel, nodes="all")
        # Our delegate comes before XNNPACK and keeps every layer it claims.
        ours = run_all(converted.content, x, XNNPACK, delegate)
        assert_equal_outputs(ours, want, f"kernel={kernel} with XNNPACK")
        check_counters(delegate.counters(), kernel, converted.layers, converted.sparse)
        for name in single:
            diff = np.abs(ours[name].astype(np.int32) - xnnpack[name]).max()
            assert diff <= 1, (name, diff)


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_bit_exact(converted: Converted, threads: int) -> None:
    for x, want in converted.cases:
        delegate = KernelDelegate(kernel="auto", num_threads=threads, nodes="all")
        assert_equal_outputs(
            run_all(converted.content, x, REF, delegate), want, f"threads={threads}"
        )
        check_counters(delegate.counters(), "auto", converted.layers, converted.sparse)


def test_tf_lite_interpreter(converted: Converted) -> None:
    """tf.lite's own interpreter, with the library loaded by tf.lite.experimental.load_delegate
    directly (counters read through ctypes from the delegate's pointer), and by
    KernelDelegate(backend="tf")."""
    path = library_path()
    x, want = converted.cases[-1]
    for kernel in ("sparse", "dense"):
        options = {"kernel": kernel, "num_threads": "1", "isa": "auto", "verbose": "false"}
        delegate = tf.lite.experimental.load_delegate(path, options)
        got = run_all(converted.content, x, REF, delegate, backend="tf")
        assert_equal_outputs(got, want, f"tf.lite load_delegate kernel={kernel}")
        check_counters(raw_counters(path, delegate), kernel, converted.layers, converted.sparse)
    delegate = KernelDelegate(kernel="auto", backend="tf", nodes="all")
    assert_equal_outputs(run_all(converted.content, x, REF, delegate, backend="tf"), want, "tf")
    check_counters(delegate.counters(), "auto", converted.layers, converted.sparse)
