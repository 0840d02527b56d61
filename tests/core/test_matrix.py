"""The [out, in] view of Keras and TFLite weights: one matrix whichever side it is read from."""

import numpy as np
import pytest

from tfcompress.core.weights import (
    depthwise_to_matrix,
    from_matrix,
    matrix_shape,
    tflite_to_matrix,
    to_matrix,
    transpose_kernel_to_matrix,
)

rng = np.random.default_rng(0)


def test_matrix_round_trip():
    w = rng.normal(size=(3, 3, 4, 5))
    np.testing.assert_array_equal(from_matrix(to_matrix(w), w.shape), w)


def test_matrix_shape_is_out_by_flattened_inputs():
    w = rng.normal(size=(3, 3, 4, 5))
    assert matrix_shape(w.shape) == to_matrix(w).shape == (5, 36)
    assert matrix_shape((7,)) == (7, 1)


def test_dense_kernel_reads_as_fully_connected():
    kernel = rng.normal(size=(12, 7))  # Keras [in, out]; TFLite stores [out, in]
    np.testing.assert_array_equal(to_matrix(kernel), tflite_to_matrix("FULLY_CONNECTED", kernel.T))


def test_conv_kernel_reads_as_conv_2d():
    kernel = rng.normal(size=(3, 3, 4, 8))  # Keras [kh, kw, in, out]; TFLite [out, kh, kw, in]
    stored = np.transpose(kernel, (3, 0, 1, 2))
    np.testing.assert_array_equal(to_matrix(kernel), tflite_to_matrix("CONV_2D", stored))


def test_conv_3d_keeps_keras_layout():
    kernel = rng.normal(size=(2, 3, 3, 4, 8))  # TFLite's CONV_3D stores it as Keras does
    np.testing.assert_array_equal(tflite_to_matrix("CONV_3D", kernel), to_matrix(kernel))


def test_depthwise_kernel_reads_as_depthwise_conv_2d():
    kernel = rng.normal(size=(3, 3, 4, 2))  # Keras [kh, kw, in, multiplier]
    stored = kernel.reshape(1, 3, 3, 8)  # TFLite [1, kh, kw, in * multiplier]
    matrix = depthwise_to_matrix(kernel)
    assert matrix.shape == (8, 9)
    np.testing.assert_array_equal(matrix, tflite_to_matrix("DEPTHWISE_CONV_2D", stored))
    np.testing.assert_array_equal(matrix[2 * 1 + 1], kernel[:, :, 1, 1].ravel())


def test_transpose_kernel_reads_as_transpose_conv():
    kernel = rng.normal(size=(3, 3, 5, 4))  # Keras [kh, kw, out, in]; TFLite [out, kh, kw, in]
    stored = np.transpose(kernel, (2, 0, 1, 3))
    matrix = transpose_kernel_to_matrix(kernel)
    assert matrix.shape == (5, 36)
    np.testing.assert_array_equal(matrix, tflite_to_matrix("TRANSPOSE_CONV", stored))


def test_tflite_op_without_a_weight_view():
    with pytest.raises(ValueError, match=r"Received: op='ADD'"):
        tflite_to_matrix("ADD", np.zeros((2, 2)))
