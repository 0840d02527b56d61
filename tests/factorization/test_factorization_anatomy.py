"""FactorizedDense and FactorizedConv2D pass the common layer checks (`run_layer_test`)."""

import pytest
from layer_checks import run_layer_test

from tfcompress import FactorizedConv2D, FactorizedDense


@pytest.mark.parametrize("use_bias, weights", [(True, 3), (False, 2)])
def test_factorized_dense(use_bias, weights):
    run_layer_test(
        lambda: FactorizedDense(6, rank=3, activation="relu", use_bias=use_bias),
        input_shape=(4, 10),
        expected_output_shape=(4, 6),
        expected_num_trainable_weights=weights,
        expected_num_non_trainable_weights=0,
    )


def test_factorized_dense_on_a_sequence():
    run_layer_test(lambda: FactorizedDense(5, rank=2), (2, 3, 8), (2, 3, 5))


@pytest.mark.parametrize(
    "kwargs, output_shape, weights",
    [
        ({"scheme": "spatial", "rank": 4}, (2, 6, 6, 8), 3),
        ({"scheme": "spatial", "rank": 4, "padding": "same", "strides": 2}, (2, 4, 4, 8), 3),
        ({"scheme": "channel", "rank": (2, 3)}, (2, 6, 6, 8), 4),
        ({"scheme": "channel", "rank": 2, "dilation_rate": 2, "use_bias": False}, (2, 4, 4, 8), 3),
    ],
    ids=["spatial", "spatial_same_strided", "channel_pair", "channel_dilated_no_bias"],
)
def test_factorized_conv2d(kwargs, output_shape, weights):
    run_layer_test(
        lambda: FactorizedConv2D(8, 3, activation="relu6", **kwargs),
        input_shape=(2, 8, 8, 3),
        expected_output_shape=output_shape,
        expected_num_trainable_weights=weights,
        expected_num_non_trainable_weights=0,
    )
