"""QuantizeWrapper and QuantizeLayer pass the common layer checks (`run_layer_test`)."""

import keras
import pytest
from layer_checks import run_layer_test

from tfcompress.quantization import QuantizeLayer, QuantizeWrapper

# run_mixed_precision_check=False: fake quantization (tf.quantization.fake_quant_with_min_max_vars)
# takes float32 tensors only, so QAT does not run under the mixed_float16 policy today.


@pytest.mark.parametrize(
    "make_inner, input_shape, output_shape",
    [
        (lambda: keras.layers.Dense(6, activation="relu"), (4, 10), (4, 6)),
        (lambda: keras.layers.Dense(6, activation="tanh"), (4, 10), (4, 6)),  # split off
        (lambda: keras.layers.Conv2D(4, 3, activation="relu6"), (2, 6, 6, 3), (2, 4, 4, 4)),
        (lambda: keras.layers.DepthwiseConv2D(3), (2, 6, 6, 3), (2, 4, 4, 3)),
    ],
    ids=["dense_relu", "dense_tanh", "conv_relu6", "depthwise"],
)
def test_quantize_wrapper(make_inner, input_shape, output_shape):
    run_layer_test(
        lambda: QuantizeWrapper(make_inner()),
        input_shape,
        output_shape,
        expected_num_trainable_weights=2,  # the wrapped layer's kernel and bias
        run_mixed_precision_check=False,
    )


def test_quantize_wrapper_folding_batch_norm():
    run_layer_test(
        lambda: QuantizeWrapper(
            keras.layers.Conv2D(4, 3, use_bias=False), batch_norm=keras.layers.BatchNormalization()
        ),
        input_shape=(2, 6, 6, 3),
        expected_output_shape=(2, 4, 4, 4),
        expected_num_trainable_weights=3,  # kernel, gamma, beta
        run_mixed_precision_check=False,
    )


def test_quantize_layer():
    run_layer_test(
        QuantizeLayer,
        input_shape=(4, 5, 5, 1),
        expected_output_shape=(4, 5, 5, 1),
        expected_num_trainable_weights=0,  # the training step moves its range only
        run_mixed_precision_check=False,
    )
