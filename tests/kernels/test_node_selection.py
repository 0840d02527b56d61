"""Which nodes the delegate claims: the cost model (`kernel="auto"`), `nodes=`, `autotune`."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from kernel_cases import REF, XNNPACK, int8_model, run, set_block_sparse
from kernel_cases import litert as litert_module

from tfcompress.kernels import KernelDelegate, autotune, candidates, library_path
from tfcompress.kernels.autotune import claimed_by_cost_model
from tfcompress.kernels.delegate import _nodes_option

MIN_SPEEDUP = 1.2  # kClaimMinSpeedup in kernels/src/cost_model.h


def mlp(batch: int | None = None) -> tuple[bytes, np.ndarray]:
    """int8 MLP: a 90% block-sparse 512x1024 FC, a dense 256x512 FC, a small dense head;
    `batch` fixes the batch dimension stored in the model."""
    keras.utils.set_random_seed(21)
    model = keras.Sequential(
        [
            keras.Input((1024,), batch_size=batch),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    set_block_sparse(model.layers[0], 0.1, np.random.default_rng(21))
    x = np.random.default_rng(22).normal(size=(64, 1024)).astype("float32")
    return int8_model(model, x), x


@pytest.fixture(scope="module")
def two_layers() -> tuple[bytes, np.ndarray]:
    return mlp()


def int8_input(content: bytes, batch: int, seed: int) -> np.ndarray:
    detail = litert_module.Interpreter(model_content=content).get_input_details()[0]
    shape = (batch, *detail["shape"][1:])
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


def test_nodes_option_claims_what_it_names(two_layers) -> None:
    content, _ = two_layers
    every = candidates(content)
    assert [n.n for n in every] == [512, 256, 10] and not any(n.claimed for n in every)
    ids = [n.node for n in every]
    x = int8_input(content, 1, seed=1)
    reference = run(content, x, REF)
    for nodes, claimed in (
        ("all", ids),
        ([ids[1]], [ids[1]]),
        ([], []),
        ([ids[2], ids[0]], ids[::2]),
    ):
        delegate = KernelDelegate(nodes=nodes)
        # Like with like: bit-exact whatever subset is claimed.
        np.testing.assert_array_equal(run(content, x, REF, delegate), reference)
        assert [n.node for n in delegate.nodes()] == claimed, nodes
        counters = delegate.counters()
        assert counters["nodes_claimed"] == len(claimed)
        assert counters["nodes_left"] == len(ids) - len(claimed)
        assert {n.node for n in delegate.nodes(claimed_only=False)} == set(ids)


def test_auto_claims_what_the_cost_model_expects_to_win(two_layers) -> None:
    content, _ = two_layers
    x = int8_input(content, 1, seed=2)
    delegate = KernelDelegate()
    np.testing.assert_array_equal(
        run(content, x, XNNPACK, delegate), run(content, x, XNNPACK, KernelDelegate(nodes=[]))
    )
    sparse, dense, head = delegate.nodes(claimed_only=False)
    assert (sparse.kernel, dense.kernel, head.kernel) == ("sparse", "dense", "dense")
    assert sparse.block_density < 0.2 and dense.block_density == 1.0
    assert sparse.rows == dense.rows == 1
    # Whatever this CPU is, a node is claimed exactly when it is expected to win by the
    # margin, the sparse layer is expected to gain more than the dense one, and the tiny
    # head (5,120 multiply-adds) is a tie.
    for node in (sparse, dense, head):
        assert node.claimed == (node.expected_speedup >= MIN_SPEEDUP), node
    assert sparse.expected_speedup > 3 * dense.expected_speedup
    assert head.expected_speedup == 1.0 and not head.claimed
    if delegate.host in ("avx2", "avx512vnni", "avx512vnni+amx"):  # the measured kinds
        assert sparse.claimed and not dense.claimed
    # A forced kernel claims every node it can run, as before.
    forced = KernelDelegate(kernel="dense")
    run(content, x, REF, forced)
    assert forced.counters()["nodes_claimed"] == 3


def test_tiny_layers_join_the_claimed_layer_they_read() -> None:
    """Under `auto`, a layer too small to matter (fewer than 16,384 multiply-adds, expected
    1.0x) is claimed when it reads a claimed node's output, so the graph is not split for it
    (the head of `two_layers`, after a layer left to XNNPACK, stays with it: the test above);
    the outputs stay the reference's."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    set_block_sparse(model.layers[0], 0.1, np.random.default_rng(5))
    content = int8_model(model, np.random.default_rng(6).normal(size=(64, 1024)).astype("float32"))
    x = int8_input(content, 1, seed=3)
    delegate = KernelDelegate()
    np.testing.assert_array_equal(run(content, x, REF, delegate), run(content, x, REF))
    sparse, head = delegate.nodes(claimed_only=False)
    assert head.expected_speedup == 1.0 and head.rows * head.n * head.k < 16384
    assert head.claimed == sparse.claimed  # claimed with it, or left with it
    if delegate.host in ("avx2", "avx512vnni", "avx512vnni+amx"):  # the measured kinds
        assert sparse.claimed and delegate.counters()["partitions"] == 1
    # Only `auto` adds neighbours: a list claims what it names.
    listed = KernelDelegate(nodes=[sparse.node])
    run(content, x, REF, listed)
    assert [n.node for n in listed.nodes()] == [sparse.node]


def test_auto_weighs_conv_shapes() -> None:
    """Two 90% block-sparse 1x1 convs: from 8 input channels (our output stage dominates:
    the Zen 5 fit expects 0.55x XNNPACK) and from 384 (2x and more). On that CPU kind auto
    leaves the first and claims the second; anywhere the outputs stay bit-exact."""
    keras.utils.set_random_seed(23)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 8)),
            keras.layers.Conv2D(384, 1, activation="relu"),
            keras.layers.Conv2D(64, 1),
        ]
    )
    rng = np.random.default_rng(23)
    for layer in model.layers:
        set_block_sparse(layer, 0.1, rng)
    x = rng.normal(size=(32, 12, 12, 8)).astype("float32")
    content = int8_model(model, x)
    delegate = KernelDelegate()
    xi = int8_input(content, 1, seed=5)
    np.testing.assert_array_equal(run(content, xi, REF, delegate), run(content, xi, REF))
    few, many = delegate.nodes(claimed_only=False)
    assert (few.k, many.k) == (8, 384) and few.kernel == many.kernel == "sparse"
    for node in (few, many):
        assert node.claimed == (node.expected_speedup >= MIN_SPEEDUP), node
    if delegate.host == "avx512vnni":  # where the conv shapes were measured
        assert few.expected_speedup < 0.7 and 2 < many.expected_speedup
        assert many.claimed and not few.claimed


def test_batch_is_part_of_the_estimate(two_layers) -> None:
    """The estimate uses the batch stored in the model (the delegate is applied before
    any resize)."""
    content, _ = two_layers
    content32, _ = mlp(batch=32)
    batch1, batch32 = KernelDelegate(), KernelDelegate()
    run(content, int8_input(content, 1, seed=3), XNNPACK, batch1)
    run(content32, int8_input(content32, 32, seed=3), XNNPACK, batch32)
    rows = [n.rows for n in batch32.nodes(claimed_only=False)]
    assert rows == [32, 32, 32]
    if batch1.host == "avx512vnni+amx":  # XNNPACK's batched GEMMs use AMX there
        assert batch32.nodes(claimed_only=False)[0].expected_speedup < (
            batch1.nodes(claimed_only=False)[0].expected_speedup
        )


@pytest.mark.parametrize(
    "nodes", ["some", [-1], [1.5], [True], "1,2", 3, [[1]]], ids=lambda v: repr(v)
)
def test_bad_nodes_are_refused(nodes) -> None:
    with pytest.raises(ValueError, match=r"`nodes` must .*Received: nodes="):
        KernelDelegate(nodes=nodes)


def test_the_library_refuses_a_malformed_nodes_option() -> None:
    assert _nodes_option([3, 1, 3]) == "1,3" and _nodes_option([]) == "none"
    options = {"kernel": "auto", "num_threads": "1", "isa": "auto", "verbose": "false"}
    for bad in ("1,,2", "x", "-3", "1,"):
        with pytest.raises(ValueError):
            litert_module.load_delegate(library_path(), {**options, "nodes": bad})


def fake_measure(gains: dict[int, float], base: float = 10.0, calls: list | None = None):
    """Latency 'measured' as base minus the gain of each claimed node."""

    def measure(configs):
        if calls is not None:
            calls.append([list(c) for c in configs])
        return [base - sum(gains[node] for node in config) for config in configs]

    return measure


def test_autotune_keeps_the_nodes_that_pay(two_layers) -> None:
    content, x = two_layers
    a, b, c = (n.node for n in candidates(content))
    calls: list = []
    chosen = autotune(content, x[:1], measure=fake_measure({a: 2.0, b: -1.0, c: 0.5}, calls=calls))
    assert chosen == sorted([a, c])
    # Every node alone against none, then the chosen set against none, the cost model's
    # choice (the sparse first layer) and all.
    assert claimed_by_cost_model(content) == [a]
    assert calls == [[[], [a], [b], [c]], [[], sorted([a, c]), [a], [a, b, c]]]
    assert json.loads(json.dumps(chosen)) == chosen


def test_autotune_returns_none_or_all_when_they_are_faster(two_layers) -> None:
    content, x = two_layers
    a, b, c = (n.node for n in candidates(content))
    assert autotune(content, x[:1], measure=fake_measure({a: -1, b: -1, c: -0.1})) == []
    assert autotune(content, x[:1], measure=fake_measure({a: 1, b: 1, c: 1})) == [a, b, c]

    def interacting(configs):  # alone each pays; together they lose
        return [10 - 0.5 * len(cfg) if len(cfg) < 2 else 11 for cfg in configs]

    # The chosen set (all three) and all lose; the cost model's single node pays.
    assert autotune(content, x[:1], measure=interacting) == claimed_by_cost_model(content) == [a]


def test_autotune_keeps_the_cost_models_nodes_when_only_together_they_pay() -> None:
    """Two 90% block-sparse layers that each gain 2.5% alone (under the 3% margin) but 5%
    together, and a dense layer that loses: the cost model's set (the two sparse layers)
    is the fastest finalist."""
    keras.utils.set_random_seed(24)
    model = keras.Sequential(
        [
            keras.Input((1024,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(64),
        ]
    )
    rng = np.random.default_rng(24)
    for layer in model.layers[:2]:
        set_block_sparse(layer, 0.1, rng)
    x = rng.normal(size=(32, 1024)).astype("float32")
    content = int8_model(model, x)
    a, b, c = (n.node for n in candidates(content))
    assert claimed_by_cost_model(content) == [a, b]
    gains = {a: 0.25, b: 0.25, c: -1.0}
    assert autotune(content, x[:1], measure=fake_measure(gains)) == [a, b]


def test_autotune_in_the_interpreter(two_layers) -> None:
    content, x = two_layers
    chosen = autotune(content, x[:1], rounds=1, invokes=3)
    assert set(chosen) <= {n.node for n in candidates(content)}
    delegate = KernelDelegate(nodes=chosen)
    xi = int8_input(content, 1, seed=4)
    np.testing.assert_array_equal(run(content, xi, REF, delegate), run(content, xi, REF))
    assert [n.node for n in delegate.nodes()] == chosen
    with pytest.raises(ValueError, match="`rounds` and `invokes`"):
        autotune(content, x[:1], rounds=0)
    with pytest.raises(ValueError, match="`min_speedup`"):
        autotune(content, x[:1], min_speedup=0.5)
