"""Whole pruned + QAT int8 models through the delegate, on real MNIST test images.

The small CNN and LeNet-300-100 are trained for a few steps, block-pruned in
16x4 tiles to 80% (as the demo does, `conv1` and `logits` kept dense), trained
with pruning-preserving QAT and exported to int8 (float input and output, so
QUANTIZE/RESHAPE/MAX_POOL_2D/DEQUANTIZE stay with the interpreter). The point
is the structure, not the accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pytest
from helpers import compile_classifier
from kernel_cases import (
    KERNELS,
    REF,
    XNNPACK,
    block_density,
    check_counters,
    check_nodes,
    expected_sparse,
    isa_params,
    run,
    weight_matrices,
)

import tfcompress as tc
from tfcompress.core.blocks import BLOCK_SHAPE
from tfcompress.demo import kept_dense  # conv1 and logits: the 16x4 block does not fit them
from tfcompress.export import export_tflite
from tfcompress.kernels import KernelDelegate
from tfcompress.pruning import (
    ConstantSparsity,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.quantization import quantize_model

SPARSITY = 0.8
TRAIN = 512  # images, 8 steps of 64 per stage
TEST = 200
SEEDS = {"small_cnn": 1, "lenet_300_100": 2}
# [n][k] weight shapes of the layers that are pruned, as TFLite stores them.
PRUNED = {"small_cnn": {(64, 288), (128, 9216)}, "lenet_300_100": {(300, 784), (100, 300)}}


@dataclass
class PrunedModel:
    name: str
    content: bytes
    x: np.ndarray  # real test images, float32
    reference: np.ndarray  # outputs with TFLite's reference kernels
    layers: int
    sparse: int


def pruned_qat_int8(build, data, seed: int) -> bytes:
    keras.utils.set_random_seed(seed)
    x, y = data.x_train[:TRAIN], data.y_train[:TRAIN]
    model = compile_classifier(build())
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    schedule = ConstantSparsity(SPARSITY, begin_step=0, frequency=1)
    wrapped = prune_low_magnitude(model, schedule, block_size=BLOCK_SHAPE, skip=kept_dense(model))
    compile_classifier(wrapped).fit(
        x, y, batch_size=64, epochs=1, verbose=0, callbacks=[UpdatePruningStep()]
    )
    qat = quantize_model(strip_pruning(wrapped), scheme="prune_preserve_8bit")
    compile_classifier(qat, learning_rate=1e-4).fit(x, y, batch_size=64, epochs=1, verbose=0)
    return export_tflite(qat, mode="int8")


@pytest.fixture(scope="module", params=["small_cnn", "lenet_300_100"])
def pruned(request, mnist) -> PrunedModel:
    build = getattr(tc.models, request.param)
    content = pruned_qat_int8(build, mnist, seed=SEEDS[request.param])
    x = mnist.x_test[:TEST]
    return PrunedModel(request.param, content, x, run(content, x, REF), *expected_sparse(content))


def test_pruned_layers_are_block_sparse(pruned: PrunedModel) -> None:
    matrices = {m.shape: m for _, m in weight_matrices(pruned.content)}
    densities = {shape: block_density(m) for shape, m in matrices.items()}
    for shape in PRUNED[pruned.name]:
        # int8 rounding may zero more weights, never fewer.
        assert np.mean(matrices[shape] == 0) >= SPARSITY - 0.005, shape
        # Partial blocks at the edges hold fewer weights, so a few more blocks are kept.
        assert densities[shape] <= 1 - SPARSITY + 0.03, densities
    assert pruned.sparse == len(PRUNED[pruned.name]), densities


@pytest.mark.parametrize("isa", isa_params())
@pytest.mark.parametrize("kernel", KERNELS)
def test_bit_exact_with_reference_kernels(pruned: PrunedModel, kernel: str, isa: str) -> None:
    delegate = KernelDelegate(kernel=kernel, isa=isa, nodes="all")
    ours = run(pruned.content, pruned.x, REF, delegate)
    assert ours.dtype == np.float32 and ours.shape == (TEST, 10)
    assert np.array_equal(ours, pruned.reference), np.abs(ours - pruned.reference).max()
    check_counters(delegate.counters(), kernel, pruned.layers, pruned.sparse)
    check_nodes(delegate.nodes(), pruned.content, kernel, isa)


def test_auto_picks_sparse_for_pruned_layers(pruned: PrunedModel) -> None:
    delegate = KernelDelegate(kernel="auto", nodes="all")
    ours = run(pruned.content, pruned.x, REF, delegate)
    assert np.array_equal(ours, pruned.reference)
    chosen = {(node.n, node.k): node.kernel for node in delegate.nodes()}
    shapes = {m.shape for _, m in weight_matrices(pruned.content)}
    assert chosen == {s: "sparse" if s in PRUNED[pruned.name] else "dense" for s in shapes}
    counters = delegate.counters()
    assert counters["sparse_nodes"] > 0 and counters["nodes_declined"] == 0, counters
    check_counters(counters, "auto", pruned.layers, pruned.sparse)


def test_predictions_match_default_interpreter(pruned: PrunedModel) -> None:
    default = run(pruned.content, pruned.x, XNNPACK)
    for resolver in (REF, XNNPACK):  # ours with the reference kernels or XNNPACK for the rest
        ours = run(pruned.content, pruned.x, resolver, KernelDelegate(nodes="all"))
        differ = np.flatnonzero(ours.argmax(-1) != default.argmax(-1))
        # XNNPACK may round one step differently per layer; only a near tie may flip.
        top2 = np.sort(default[differ], axis=-1)[:, -2:]
        step = np.diff(np.unique(default)).min()
        assert differ.size <= 1 and np.all(top2[:, 1] - top2[:, 0] <= 2 * step), differ
