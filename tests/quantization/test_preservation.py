"""`SparsityPreservation` and `ClusterPreservation` on their own."""

import keras
import numpy as np

from tfcompress.quantization.cluster_preservation import ClusterPreservation
from tfcompress.quantization.sparsity_preservation import SparsityPreservation

RNG = np.random.default_rng(0)


def _dense(kernel):
    dense = keras.layers.Dense(kernel.shape[1])
    dense.build((None, kernel.shape[0]))
    dense.kernel.assign(kernel)
    return dense


def test_sparsity_masks_keep_the_zeros_at_creation():
    kernel = RNG.normal(size=(6, 4)).astype("float32")
    kernel[kernel < 0.2] = 0
    dense, owner = _dense(kernel), keras.layers.Layer(name="owner")
    sparsity = SparsityPreservation(owner, [dense.kernel, dense.bias])
    assert [m.path for m in owner.weights] == ["owner/sparsity_mask_0", "owner/sparsity_mask_1"]
    assert not any(m.trainable for m in sparsity.masks)
    np.testing.assert_array_equal(sparsity.masks[0].numpy(), kernel != 0)
    moved = sparsity.masked(0, keras.ops.ones((6, 4))).numpy()
    np.testing.assert_array_equal(moved, (kernel != 0).astype("float32"))
    np.testing.assert_array_equal(sparsity.masks[1].numpy(), 0)  # fresh biases are zero


def test_sparsity_capture_takes_the_zeros_again():
    dense = _dense(np.ones((3, 2), "float32"))
    sparsity = SparsityPreservation(keras.layers.Layer(), [dense.kernel])
    assert sparsity.masks[0].numpy().all()
    dense.kernel.assign([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # weights copied in later
    sparsity.capture()
    np.testing.assert_array_equal(sparsity.masks[0].numpy(), dense.kernel.numpy() != 0)


def test_clusters_rebuild_the_weight_from_its_distinct_values():
    kernel = RNG.choice([-0.5, 0.0, 0.25, 1.0], size=(8, 3)).astype("float32")
    dense, owner = _dense(kernel), keras.layers.Layer(name="owner")
    clusters = ClusterPreservation(owner, [dense.kernel])
    assert clusters.num_centroids == [4]
    assert [w.path for w in owner.weights] == ["owner/centroids_0", "owner/cluster_indices_0"]
    assert clusters.centroids[0].trainable and not clusters.indices[0].trainable
    assert clusters.indices[0].dtype == "int32"
    assert not dense.kernel.trainable  # the centroids train instead
    np.testing.assert_array_equal(clusters.centroids[0].numpy(), [-0.5, 0.0, 0.25, 1.0])
    np.testing.assert_array_equal(clusters.clustered(0).numpy(), kernel)


def test_training_a_centroid_moves_every_weight_sharing_it():
    kernel = RNG.choice([-1.0, 2.0], size=(4, 2)).astype("float32")
    clusters = ClusterPreservation(keras.layers.Layer(), [_dense(kernel).kernel])
    clusters.centroids[0].assign([-1.5, 2.0])
    expected = np.where(kernel == -1.0, -1.5, 2.0)
    np.testing.assert_array_equal(clusters.clustered(0).numpy(), expected)


def test_clusters_from_a_config_start_at_zero_when_the_count_differs():
    """A wrapper re-created from a config builds on fresh weights; the saved values load later."""
    dense = _dense(RNG.normal(size=(3, 2)).astype("float32"))  # 6 distinct values
    clusters = ClusterPreservation(keras.layers.Layer(), [dense.kernel], num_centroids=[4])
    assert clusters.num_centroids == [4] and clusters.centroids[0].shape == (4,)
    np.testing.assert_array_equal(clusters.centroids[0].numpy(), 0)
    np.testing.assert_array_equal(clusters.indices[0].numpy(), 0)
