"""ClusterWeights passes the common layer checks (`run_layer_test`)."""

import keras
import numpy as np
import pytest
from layer_checks import run_layer_test

from tfcompress.clustering import ClusterWeights


@pytest.mark.parametrize(
    "make_inner, input_shape, output_shape, kwargs",
    [
        (lambda: keras.layers.Dense(6), (4, 10), (4, 6), {}),
        (lambda: keras.layers.Dense(6), (4, 10), (4, 6), {"cluster_centroids_init": "linear"}),
        (lambda: keras.layers.Conv2D(4, 3), (2, 6, 6, 3), (2, 4, 4, 4), {}),  # per channel
        (
            lambda: keras.layers.Conv2D(4, 3),
            (2, 6, 6, 3),
            (2, 4, 4, 4),
            {"cluster_per_channel": False, "preserve_sparsity": True},
        ),
    ],
    ids=["dense", "dense_linear_init", "conv_per_channel", "conv_sparse"],
)
def test_cluster_weights(make_inner, input_shape, output_shape, kwargs):
    model = run_layer_test(
        lambda: ClusterWeights(make_inner(), number_of_clusters=4, **kwargs),
        input_shape,
        output_shape,
        # the wrapped layer's kernel and bias, and the centroids
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=1,  # the indices
    )
    wrapper = model.layers[-1]
    kernel = wrapper.clustered_weights()[0]  # after the training step
    per_channel = wrapper.centroids[0].ndim == 2  # [channels, k]
    groups = kernel.reshape(-1, kernel.shape[-1]).T if per_channel else [kernel]
    assert all(len(np.unique(group)) <= 4 for group in groups)
