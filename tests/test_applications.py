"""The README's coverage matrix: `keras.applications` architectures through every technique.

Each architecture is built once per module (`weights=None`, the smallest input it
accepts, 4 classes, logits out) and goes through: `report` (totals against Keras and
against the `.tflite`), post-training int8 (converts, all int8 inside, runs), our
kernels against TFLite's reference kernels on that file (bit-exact), pruning
(unstructured and 16x4 blocks through the whole-model path, one training step),
clustering, factorization and the `.keras` round trip of the wrapped models. The QAT
column is `tests/quantization/test_applications_qat.py`. The large architectures are
marked slow and run only with `TFCOMPRESS_FULL_MATRIX=1` (CI runs the two MobileNets).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import pytest
from helpers import FULL_MATRIX

import tfcompress as tc
from tfcompress.clustering import ClusterWeights
from tfcompress.core.weights import to_matrix
from tfcompress.export import TFLiteFile
from tfcompress.factorization import FactorizedConv2D, FactorizedDense
from tfcompress.pruning import (
    ConstantSparsity,
    PruneLowMagnitude,
    UpdatePruningStep,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.reporting.notes import layer_note
from tfcompress.utils.surgery import collect

CLASSES = 4
SPARSITY = 0.5
CLUSTERS = 8
large = (pytest.mark.slow, FULL_MATRIX)
# name -> (constructor, smallest input side, marks)
ARCHITECTURES = {
    "MobileNetV2": (keras.applications.MobileNetV2, 32, ()),
    "MobileNetV3Small": (keras.applications.MobileNetV3Small, 32, ()),
    "EfficientNetB0": (keras.applications.EfficientNetB0, 32, large),
    "ResNet50": (keras.applications.ResNet50, 32, large),
    "DenseNet121": (keras.applications.DenseNet121, 32, large),
    "Xception": (keras.applications.Xception, 71, large),
    "NASNetMobile": (keras.applications.NASNetMobile, 32, large),
}


@dataclass
class Architecture:
    name: str
    model: keras.Model
    x: np.ndarray  # two images
    y: np.ndarray


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=marks) for name, (_, _, marks) in ARCHITECTURES.items()],
)
def arch(request) -> Architecture:
    build, side, _ = ARCHITECTURES[request.param]
    keras.utils.set_random_seed(0)
    model = build(
        weights=None, input_shape=(side, side, 3), classes=CLASSES, classifier_activation=None
    )
    x = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3)).astype("float32")
    return Architecture(request.param, model, x, np.arange(2))


@pytest.fixture(scope="module")
def int8(arch: Architecture) -> bytes:
    return tc.export_tflite(
        arch.model, mode="int8", representative_data=arch.x, num_calibration_samples=len(arch.x)
    )


def train_one_step(model: keras.Model, arch: Architecture, callbacks=()) -> keras.Model:
    """One eager step: tracing the training function of these models costs far more."""
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True
    )
    model.fit(arch.x, arch.y, batch_size=len(arch.x), verbose=0, callbacks=list(callbacks))
    return model


def outputs(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One eager call: `predict` would trace a function per model, which costs seconds here."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def round_trip(model: keras.Model, arch: Architecture, tmp_path) -> None:
    """The wrapped model saves as `.keras` and loads (no custom_objects) to the same outputs."""
    path = tmp_path / f"{arch.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        outputs(loaded, arch.x), outputs(model, arch.x), rtol=1e-5, atol=1e-5
    )


def weight_macs(model: keras.Model) -> int:
    """Multiply-accumulates of the weight layers, from the layers' own output shapes."""
    total = 0
    for layer in model.layers:
        out = layer.output.shape[1:] if layer.weights else None
        if isinstance(layer, keras.layers.SeparableConv2D):
            total += math.prod(out[:-1]) * (
                math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
            )
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            total += math.prod(out) * math.prod(layer.kernel.shape[:2])
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            total += math.prod(out) * math.prod(layer.kernel.shape[:-1])
    return total


def test_report_totals(arch: Architecture, int8: bytes):
    result = tc.report(arch.model, tflite=int8)
    assert result.summary["params"] == arch.model.count_params()
    assert result.summary["macs"] == weight_macs(arch.model)
    # The flatbuffer's ops (BatchNormalization folded) count the same products.
    assert result.summary["tflite_macs"] == result.summary["macs"]


def test_post_training_int8(arch: Architecture, int8: bytes):
    ops = [op.name for op in TFLiteFile(int8).ops]
    # Float input and output: one QUANTIZE in, one DEQUANTIZE out, all int8 in between.
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE", ops
    assert ops.count("QUANTIZE") == ops.count("DEQUANTIZE") == 1, ops
    out = tc.TFLiteModel(int8).predict(arch.x)
    assert out.shape == (len(arch.x), CLASSES) and np.all(np.isfinite(out))
    reference = outputs(arch.model, arch.x)
    assert np.abs(out - reference).max() <= 0.1 * np.abs(reference).max() + 1e-3


def test_kernels_bit_exact_with_reference(arch: Architecture, int8: bytes):
    reference = tc.TFLiteModel(int8, reference_kernels=True).predict(arch.x)
    runner = tc.TFLiteModel(
        int8, reference_kernels=True, use_tfcompress_kernels=True, kernel_options={"nodes": "all"}
    )
    np.testing.assert_array_equal(runner.predict(arch.x), reference)
    counters = runner.kernels.counters()
    assert counters["nodes_declined"] == 0 and counters["dense_nodes"] > 0, counters


def pruned_weights(model: keras.Model) -> list[np.ndarray]:
    return [
        keras.ops.convert_to_numpy(w)
        for wrapper in collect(model, PruneLowMagnitude)
        for w in wrapper.prunable_weights
    ]


def check_stripped(pruned: keras.Model, arch: Architecture) -> keras.Model:
    stripped = strip_pruning(pruned)
    assert not collect(stripped, PruneLowMagnitude)
    assert {type(layer) for layer in stripped.layers} <= {
        type(layer) for layer in arch.model.layers
    }
    np.testing.assert_allclose(outputs(stripped, arch.x), outputs(pruned, arch.x), atol=1e-5)
    return stripped


def test_unstructured_pruning(arch: Architecture):
    schedule = ConstantSparsity(SPARSITY, begin_step=0, frequency=1)
    pruned = prune_low_magnitude(arch.model, schedule)
    train_one_step(pruned, arch, [UpdatePruningStep()])
    weights = pruned_weights(pruned)
    assert weights and all(abs((w == 0).mean() - SPARSITY) < 0.01 for w in weights)
    check_stripped(pruned, arch)


def test_block_pruning_on_the_whole_model(arch: Architecture, tmp_path):
    schedule = ConstantSparsity(SPARSITY, begin_step=0, frequency=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = prune_low_magnitude(arch.model, schedule, block_size=(16, 4))
    messages = [str(w.message) for w in caught if "prune_low_magnitude" in str(w.message)]
    assert len(messages) <= 1, messages
    train_one_step(pruned, arch, [UpdatePruningStep()])
    weights = pruned_weights(pruned)
    assert weights
    for w in weights:
        # Whole tiles: a little under the target where partial tiles hold fewer weights.
        assert SPARSITY - 0.05 <= (w == 0).mean() <= SPARSITY, w.shape
        assert tc.reporting.describe_structure(to_matrix(w)) == "block 16x4", w.shape
    stripped = check_stripped(pruned, arch)
    left = [layer.name for layer in stripped.layers if layer_note(layer)]
    for name in left:  # every layer left dense is in the one warning, and noted
        assert f"'{name}'" in messages[0]
    round_trip(pruned, arch, tmp_path)


def test_clustering(arch: Architecture, tmp_path):
    clustered = tc.cluster_weights(arch.model, CLUSTERS, cluster_centroids_init="linear")
    wrappers = collect(clustered, ClusterWeights)
    assert wrappers
    stripped = tc.strip_clustering(clustered)
    assert not collect(stripped, ClusterWeights)
    for wrapper in wrappers:
        plain = stripped.get_layer(wrapper.layer.name)
        for value, axes in zip(wrapper.clustered_weights(), wrapper.channel_axes):
            if axes is None:  # one set of centroids
                rows = value.reshape(1, -1)
            else:  # a set per channel
                channels = math.prod(value.shape[a] for a in axes)
                rows = np.moveaxis(value, axes, range(len(axes))).reshape(channels, -1)
            assert max(np.unique(row).size for row in rows) <= CLUSTERS, wrapper.name
        for mine, theirs in zip(wrapper.stripped_weights(), plain.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_allclose(outputs(stripped, arch.x), outputs(clustered, arch.x), atol=1e-4)
    round_trip(clustered, arch, tmp_path)


def test_factorization(arch: Architecture):
    factorized = tc.factorize(arch.model, compression=0.5)
    replaced = [
        layer
        for layer in factorized.layers
        if isinstance(layer, (FactorizedDense, FactorizedConv2D))
    ]
    assert replaced and factorized.count_params() < arch.model.count_params()
    assert np.all(np.isfinite(outputs(factorized, arch.x)))


def test_factorized_layers_at_full_rank_match(arch: Architecture):
    """The architecture's first and last spatial convs and its head, at full rank: same outputs."""
    convs = [
        layer
        for layer in arch.model.layers
        if type(layer) is keras.layers.Conv2D and layer.kernel_size != (1, 1)
    ]
    heads = [layer for layer in arch.model.layers if type(layer) is keras.layers.Dense]
    rng = np.random.default_rng(1)
    for layer in convs[:1] + convs[-1:] + heads:
        x = rng.normal(size=(2, *layer.input.shape[1:])).astype("float32")
        kh, kw, n_in, n_out = layer.kernel.shape if layer in convs else (1, 1, *layer.kernel.shape)
        if layer in convs:
            forms = [
                FactorizedConv2D.from_conv2d(layer, min(kh * n_in, kw * n_out)),
                FactorizedConv2D.from_conv2d(layer, (n_in, n_out), scheme="channel"),
            ]
        else:
            forms = [FactorizedDense.from_dense(layer, rank=min(n_in, n_out))]
        for form in forms:
            np.testing.assert_allclose(form(x), layer(x), rtol=1e-4, atol=1e-4, err_msg=layer.name)
