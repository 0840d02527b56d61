"""PruneLowMagnitude passes the common layer checks (`run_layer_test`), with its callback."""

import keras
import numpy as np
import pytest
from layer_checks import run_layer_test

from tfcompress.pruning import ConstantSparsity, PruneLowMagnitude, UpdatePruningStep


@pytest.mark.parametrize(
    "make_inner, input_shape, output_shape, kwargs",
    [
        (lambda: keras.layers.Dense(16), (4, 8), (4, 16), {}),
        (lambda: keras.layers.Dense(16), (4, 8), (4, 16), {"block_size": (16, 4)}),
        (lambda: keras.layers.Dense(16), (4, 8), (4, 16), {"sparsity_m_by_n": (2, 4)}),
        (lambda: keras.layers.Dense(16), (4, 8), (4, 16), {"importance": "taylor"}),
        (lambda: keras.layers.Conv2D(8, 3), (2, 6, 6, 2), (2, 4, 4, 8), {"channel_norm": "L1"}),
    ],
    ids=["unstructured", "block_16x4", "2_of_4", "taylor", "channels_l1"],
)
def test_prune_low_magnitude(make_inner, input_shape, output_shape, kwargs):
    schedule = ConstantSparsity(0.5, begin_step=0)
    model = run_layer_test(
        lambda: PruneLowMagnitude(make_inner(), schedule, **kwargs),
        input_shape,
        output_shape,
        expected_num_trainable_weights=2,  # the wrapped layer's kernel and bias
        callbacks=[UpdatePruningStep()],
    )
    wrapper = model.layers[-1]
    kernel = keras.ops.convert_to_numpy(wrapper.layer.kernel)
    assert int(wrapper.pruning_step.numpy()) == 1
    assert np.mean(kernel == 0) == pytest.approx(0.5)  # the one step pruned at step 0
