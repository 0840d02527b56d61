"""DEPTHWISE_CONV_2D through the delegate: bit-exact against TFLite's reference kernels.

One converted model holds a DepthwiseConv2D per input over the parameter grid (depth
multiplier 1-3, strides, dilation, SAME/VALID, fused none/ReLU/ReLU6, with and without a
bias) plus a few random configurations; both kernels (the reference loops and the fast
one) on every kernel path this CPU has, per-channel and per-tensor weights. `nodes="auto"`
leaves depthwise nodes to XNNPACK on CPUs where ours is measured slower.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from kernel_cases import (
    REF,
    host_isas,
    int8_model,
    int8_multi_model,
    random_inputs,
    run_all,
    with_scales,
)
from test_delegate_declines import run_or_error
from test_delegate_layers import assert_equal_outputs

from tfcompress.export import export_tflite
from tfcompress.kernels import KernelDelegate

# (height, width, channels, kernel, strides, dilation, padding, multiplier, activation, bias)
GRID = [
    (7, 9, 5, (3, 3), (1, 1), (1, 1), "same", 1, None, True),
    (7, 9, 5, (3, 3), (2, 2), (1, 1), "same", 1, "relu", True),
    (8, 8, 3, (3, 3), (1, 1), (1, 1), "valid", 2, "relu6", True),
    (9, 7, 4, (5, 3), (2, 1), (1, 1), "valid", 3, None, False),
    (6, 10, 17, (2, 3), (1, 2), (1, 1), "same", 1, "relu6", True),
    (9, 9, 6, (3, 3), (1, 1), (2, 2), "same", 1, "relu", True),
    (10, 8, 3, (3, 2), (1, 1), (2, 1), "valid", 2, None, True),
    (5, 5, 33, (3, 3), (2, 2), (1, 1), "same", 1, None, False),
]


def random_grid(seed: int, count: int) -> list[tuple]:
    """A few random configurations (fuzz-style), valid for VALID padding too."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
        dilation = (1, 1) if rng.random() < 0.6 else tuple(int(v) for v in rng.integers(1, 3, 2))
        strides = (1, 1) if dilation != (1, 1) else tuple(int(v) for v in rng.integers(1, 4, 2))
        size = [int(rng.integers((k - 1) * d + 1, 12)) for k, d in zip(kernel, dilation)]
        cases.append(
            (
                *size,
                int(rng.integers(1, 24)),
                kernel,
                strides,
                dilation,
                str(rng.choice(["same", "valid"])),
                int(rng.integers(1, 4)),
                [None, "relu", "relu6"][int(rng.integers(3))],
                bool(rng.random() < 0.7),
            )
        )
    return cases


@functools.cache
def depthwise_model(seed: int = 21) -> tuple[keras.Model, dict[str, np.ndarray]]:
    """One DepthwiseConv2D per input. Dilated ones get a fixed batch (with a dynamic batch
    the converter wraps them in SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs, outputs = [], []
    for i, (h, w, c, kernel, strides, dilation, padding, multiplier, activation, bias) in enumerate(
        GRID + random_grid(seed, 6)
    ):
        batch_size = 1 if dilation != (1, 1) else None
        x = keras.Input((h, w, c), batch_size=batch_size, name=f"dw{i}")
        layer = keras.layers.DepthwiseConv2D(
            kernel,
            strides=strides,
            dilation_rate=dilation,
            padding=padding,
            depth_multiplier=multiplier,
            activation=activation,
            use_bias=bias,
        )
        inputs.append(x)
        outputs.append(layer(x))
        if bias:
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype("float32"))
    samples = {t.name: rng.normal(size=(64, *t.shape[1:])).astype("float32") for t in inputs}
    return keras.Model(inputs, outputs), samples


@pytest.fixture(scope="module", params=["per-channel", "per-tensor"])
def converted(request) -> tuple[bytes, int]:
    model, samples = depthwise_model()
    content = int8_multi_model(model, samples, per_channel=request.param == "per-channel")
    return content, len(model.inputs)


def test_bit_exact_with_reference_kernels(converted: tuple[bytes, int]) -> None:
    content, layers = converted
    for batch in (1, 2):
        x = random_inputs(content, batch, seed=batch)
        want = run_all(content, x, REF)
        for kernel in ("reference", "dense", "auto"):
            for isa in host_isas():
                delegate = KernelDelegate(kernel=kernel, isa=isa, nodes="all")
                got = run_all(content, x, REF, delegate)
                assert_equal_outputs(got, want, f"kernel={kernel} isa={isa} batch={batch}")
                nodes = delegate.nodes()
                assert len(nodes) == layers and {n.op for n in nodes} == {"DEPTHWISE_CONV_2D"}
                ran = {"reference" if kernel == "reference" else "dense"}
                assert {n.kernel for n in nodes} == ran, nodes
        threaded = KernelDelegate(num_threads=2, nodes="all")
        assert_equal_outputs(run_all(content, x, REF, threaded), want, "threads=2")
        # nodes="auto" claims a depthwise node only where the cost model expects ours to
        # win; on the CPUs measured (and the guesses elsewhere) it never does.
        auto = KernelDelegate()
        assert_equal_outputs(run_all(content, x, REF, auto), want, "nodes=auto")
        seen = auto.nodes(claimed_only=False)
        assert len(seen) == layers and not any(n.claimed for n in seen), seen
        assert all(0 < n.expected_speedup < 1.15 for n in seen), seen


@functools.cache
def one_depthwise(float_model: bool = False) -> bytes:
    keras.utils.set_random_seed(22)
    x = keras.Input((6, 6, 4))
    model = keras.Model(x, keras.layers.DepthwiseConv2D(3, depth_multiplier=2)(x))
    if float_model:
        return export_tflite(model)
    samples = np.random.default_rng(22).normal(size=(32, 6, 6, 4)).astype("float32")
    return int8_model(model, samples)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda: one_depthwise(float_model=True), "not int8"),
        (lambda: with_scales(one_depthwise(), weights=0.0), "weight scale 0 of channel 0"),
        (lambda: with_scales(one_depthwise(), output=1e-45), "output scale 1.4013e-45"),
    ],
    ids=["float", "zero weight scale", "denormal output scale"],
)
def test_unsupported_depthwise_is_declined_with_a_reason(
    content, reason: str, capfd: pytest.CaptureFixture
) -> None:
    content = content()
    x = random_inputs(content, 2, seed=3)
    delegate = KernelDelegate(nodes="all", verbose=True)
    want = run_or_error(content, x, REF)
    got = run_or_error(content, x, REF, delegate)
    if isinstance(want, str):
        assert got == want
    else:
        assert_equal_outputs(got, want, reason)
    counters = delegate.counters()
    assert counters["nodes_claimed"] == 0 and counters["nodes_declined"] == 1, counters
    assert f"declined: {reason}" in capfd.readouterr().err
