"""Pruning- and clustering-preserving QAT: zeros, block structure and shared values survive
training and int8 conversion (read back from the flatbuffer)."""

import keras
import numpy as np
import pytest
from helpers import compile_classifier

import tfcompress as tc
from tfcompress.core.blocks import is_block_sparse, satisfies_n_m
from tfcompress.export import TFLiteFile, export_tflite
from tfcompress.pruning import ConstantSparsity, UpdatePruningStep


def _fit(model, data, callbacks=(), steps=8):
    compile_classifier(model, learning_rate=1e-3)
    n = 64 * steps
    model.fit(
        data.x_train[:n],
        data.y_train[:n],
        batch_size=64,
        epochs=1,
        verbose=0,
        callbacks=list(callbacks),
    )
    return model


@pytest.fixture(scope="module")
def pruned_lenet(trained_lenet, mnist):
    """fc1 in 16x4 blocks and fc2 in 2:4, both 50% or more zeros, stripped."""
    schedule = ConstantSparsity(0.8, 0, frequency=1)
    blocks = tc.prune_low_magnitude(
        trained_lenet, schedule, block_size=(16, 4), skip=["fc2", "logits"]
    )
    stage1 = tc.strip_pruning(_fit(blocks, mnist, [UpdatePruningStep()]))
    stage1.get_layer("fc1").trainable = False  # keep its blocks while fc2 is pruned
    n_m = tc.prune_low_magnitude(stage1, schedule, sparsity_m_by_n=(2, 4), skip=["fc1", "logits"])
    pruned = tc.strip_pruning(_fit(n_m, mnist, [UpdatePruningStep()]))
    pruned.get_layer("fc1").trainable = True
    return pruned


def _tflite_kernels(content) -> dict[str, np.ndarray]:
    """The int8 FULLY_CONNECTED weights by op order, as [in, out] like Keras."""
    info = TFLiteFile(content)
    ops = [op for op in info.ops if op.name == "FULLY_CONNECTED"]
    return {
        name: info.tensors[op.inputs[1]].data.T for name, op in zip(["fc1", "fc2", "logits"], ops)
    }


@pytest.mark.parametrize("scheme", ["prune_preserve_8bit", "default_8bit"])
def test_pruning_preserving_qat_keeps_zeros_and_structure(pruned_lenet, mnist, scheme):
    zeros = {name: pruned_lenet.get_layer(name).kernel.numpy() == 0 for name in ("fc1", "fc2")}
    assert zeros["fc1"].mean() > 0.75 and zeros["fc2"].mean() >= 0.5
    qat = _fit(tc.quantize_model(pruned_lenet, scheme=scheme), mnist, steps=16)
    kernels = _tflite_kernels(export_tflite(qat, mode="int8"))
    for name, was_zero in zeros.items():
        int8 = kernels[name]  # int8 rounding may zero a few more small weights, never fewer
        if scheme == "prune_preserve_8bit":
            assert not int8[was_zero].any(), name
            (wrapper_kernel,) = qat.get_layer(f"quant_{name}").quantized_weights().values()
            assert not wrapper_kernel.numpy()[was_zero].any()
        else:  # without preservation, training moves pruned weights off zero
            assert int8[was_zero].any(), name
    if scheme == "prune_preserve_8bit":
        assert is_block_sparse(kernels["fc1"].T, (16, 4))
        assert satisfies_n_m(kernels["fc2"].T, 2, 4)


def test_clustering_preserving_qat_keeps_shared_values(trained_lenet, mnist):
    clustered = _fit(tc.cluster_weights(trained_lenet, number_of_clusters=8), mnist)
    plain = tc.strip_clustering(clustered)
    for name in ("fc1", "fc2", "logits"):
        assert np.unique(plain.get_layer(name).kernel.numpy()).size <= 8
    qat = _fit(tc.quantize_model(plain, scheme="cluster_preserve_8bit"), mnist, steps=16)
    wrapper = qat.get_layer("quant_fc1")
    assert wrapper.num_centroids[0] <= 8 and wrapper.centroids[0].trainable
    before = plain.get_layer("fc1").kernel.numpy()
    (trained,) = wrapper.quantized_weights().values()
    assert not np.allclose(trained.numpy(), _per_tensor(before))  # the centroids trained
    for name, int8 in _tflite_kernels(export_tflite(qat, mode="int8")).items():
        assert np.unique(int8).size <= 8, name
    again = tc.quantize_model(plain)  # the default scheme lets values drift apart
    _fit(again, mnist, steps=16)
    (drifted,) = again.get_layer("quant_fc1").quantized_weights().values()
    assert np.unique(drifted.numpy()).size > 8


def _per_tensor(kernel):
    return tc.quantization.WeightQuantizer(per_channel=False)(kernel).numpy()


def test_sparsity_and_clusters_together(pruned_lenet, mnist):
    clustered = tc.cluster_weights(pruned_lenet, number_of_clusters=8, preserve_sparsity=True)
    plain = tc.strip_clustering(_fit(clustered, mnist))
    zeros = plain.get_layer("fc1").kernel.numpy() == 0
    qat = _fit(tc.quantize_model(plain, scheme="prune_cluster_preserve_8bit"), mnist, steps=16)
    int8 = _tflite_kernels(export_tflite(qat, mode="int8"))["fc1"]
    assert not int8[zeros].any()
    assert np.unique(int8).size <= 8


def test_cluster_preserving_on_subclassed_is_refused():
    class Sub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="Clustering-preserving QAT needs a Sequential"):
        tc.quantize_model(sub, scheme="cluster_preserve_8bit")
