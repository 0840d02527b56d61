"""`TFLiteModel` with our kernels: `delegates=[...]` and the `use_tfcompress_kernels` shortcut."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from kernel_cases import check_nodes, int8_model, raw_counters, set_block_sparse

from tfcompress.export import TFLiteModel
from tfcompress.kernels import KernelDelegate, KernelNode, library_path


@pytest.fixture(scope="module")
def mlp() -> bytes:
    """int8 256 -> 128 -> 10 with the first layer 80% block-sparse (auto runs it sparse)."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((256,))
    hidden = keras.layers.Dense(128, activation="relu")
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden(inputs)))
    set_block_sparse(hidden, 0.2, np.random.default_rng(7))
    return int8_model(model, np.random.default_rng(7).normal(size=(64, 256)).astype("float32"))


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(8).normal(size=(20, 256)).astype("float32")


def test_shortcut_appends_a_kernel_delegate(mlp: bytes, x: np.ndarray) -> None:
    reference = TFLiteModel(mlp, reference_kernels=True).run_batch(x, raw=True)
    model = TFLiteModel(mlp, use_tfcompress_kernels=True, kernel_options={"kernel": "sparse"})
    assert np.array_equal(model.run_batch(x, raw=True), reference)
    assert isinstance(model.kernels, KernelDelegate) and model.delegates == [model.kernels]
    assert model.kernels.counters()["sparse_nodes"] == 2
    check_nodes(model.kernels.nodes(), mlp, "sparse", model.kernels.isa)


def test_delegates_take_ours_and_plain_delegate_objects(mlp: bytes, x: np.ndarray) -> None:
    reference = TFLiteModel(mlp, reference_kernels=True).run_batch(x, raw=True)
    ours = KernelDelegate(kernel="auto", nodes="all")
    model = TFLiteModel(mlp, delegates=[ours], reference_kernels=True)
    assert model.kernels is ours
    assert np.array_equal(model.run_batch(x, raw=True), reference)
    nodes = ours.nodes()
    assert all(isinstance(n, KernelNode) for n in nodes)
    kinds = [(n.op, n.kernel) for n in nodes]
    assert kinds == [("FULLY_CONNECTED", "sparse"), ("FULLY_CONNECTED", "dense")], nodes
    assert nodes[0].to_dict()["block_density"] <= 0.3
    # A delegate object of the runtime itself (here: our library loaded by LiteRT directly).
    options = {"kernel": "dense", "num_threads": "1", "isa": "auto", "verbose": "false"}
    plain = litert.load_delegate(library_path(), options)
    model = TFLiteModel(mlp, delegates=[plain], reference_kernels=True)
    assert model.kernels is None
    assert np.array_equal(model.run_batch(x, raw=True), reference)
    assert raw_counters(library_path(), plain)["dense_nodes"] == 2


def test_tf_lite_runtime(mlp: bytes, x: np.ndarray) -> None:
    reference = TFLiteModel(mlp, reference_kernels=True, backend="tf").run_batch(x, raw=True)
    model = TFLiteModel(
        mlp,
        backend="tf",
        reference_kernels=True,
        use_tfcompress_kernels=True,
        kernel_options={"nodes": "all"},
    )
    assert model.kernels.backend == "tf" and model.backend == "tensorflow"
    assert model.kernels.counters()["nodes_claimed"] == 2
    assert np.array_equal(model.run_batch(x, raw=True), reference)
    options = {"kernel": "reference", "num_threads": "1", "isa": "auto", "verbose": "false"}
    plain = tf.lite.experimental.load_delegate(library_path(), options)
    model = TFLiteModel(mlp, backend="tf", delegates=[plain])
    assert np.array_equal(model.run_batch(x, raw=True), reference)


def test_verbose_still_prints(mlp: bytes, x: np.ndarray, capfd: pytest.CaptureFixture) -> None:
    capfd.readouterr()
    TFLiteModel(mlp, use_tfcompress_kernels=True, kernel_options={"verbose": True}).predict(x)
    assert "tfcompress kernels: node" in capfd.readouterr().err


def test_a_fresh_delegate_has_no_nodes() -> None:
    assert KernelDelegate().nodes() == []


def test_bad_arguments(mlp: bytes) -> None:
    with pytest.raises(ValueError, match="`kernel_options` needs"):
        TFLiteModel(mlp, kernel_options={"kernel": "dense"})
    with pytest.raises(ValueError, match=r"`delegates\[0\]`.*delegates\[0\].backend='litert'"):
        TFLiteModel(mlp, backend="tf", delegates=[KernelDelegate(backend="litert")])
