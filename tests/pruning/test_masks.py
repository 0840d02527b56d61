"""Masks: exact sparsity, smallest weights first, and every block / group respects the structure."""

import numpy as np
import pytest

from tfcompress.core.blocks import describe_structure, zero_block_fraction
from tfcompress.core.weights import to_matrix
from tfcompress.pruning.masks import check_structure, compute_masks

rng = np.random.default_rng(0)


def test_unstructured_prunes_the_smallest():
    w = rng.normal(size=(64, 32))
    (mask,) = compute_masks([np.abs(w)], 0.75)
    assert mask.mean() == pytest.approx(0.25)
    assert np.abs(w)[mask == 0].max() <= np.abs(w)[mask == 1].min()


def test_dense_kernel_blocks_are_16_outputs_by_4_inputs():
    kernel = rng.normal(size=(32, 48))  # Keras Dense [in=32, out=48]
    (mask,) = compute_masks([np.abs(kernel)], 0.5, block_size=(16, 4))
    tiles = mask.reshape(8, 4, 3, 16)  # kernel[i:i+4, o:o+16]
    assert np.all(tiles.min(axis=(1, 3)) == tiles.max(axis=(1, 3)))
    assert describe_structure(to_matrix(kernel * mask)) == "block 16x4"
    assert zero_block_fraction(to_matrix(mask)) == pytest.approx(0.5)


def test_conv_kernel_blocks_follow_tflite_layout():
    kernel = rng.normal(size=(3, 3, 8, 32))  # [kh, kw, in, out] -> [32, 72]
    (mask,) = compute_masks([np.abs(kernel)], 0.8, block_size=(16, 4), block_pooling_type="MAX")
    tflite_layout = np.transpose(kernel * mask, (3, 0, 1, 2)).reshape(32, -1)  # [out, kh*kw*in]
    assert describe_structure(tflite_layout) == "block 16x4"
    zeros = 1 - np.count_nonzero(tflite_layout) / tflite_layout.size
    assert zeros == pytest.approx(0.8, abs=0.03)


def test_partial_edge_tiles():
    kernel = rng.normal(size=(784, 300))  # LeNet fc1: 300 outputs = 18 tiles of 16 + 12
    (mask,) = compute_masks([np.abs(kernel)], 0.9, block_size=(16, 4))
    assert (mask == 0).mean() == pytest.approx(0.9, abs=0.002)
    assert describe_structure(to_matrix(kernel * mask)) == "block 16x4"


def test_two_of_four_keeps_the_two_largest():
    w = rng.normal(size=(16, 40))  # [in=16, out=40]: 4 groups of 4 inputs per output
    (mask,) = compute_masks([np.abs(w)], 0.0, sparsity_m_by_n=(2, 4))
    groups = to_matrix(mask).reshape(40, 4, 4)
    assert np.all(groups.sum(-1) == 2)
    mags = to_matrix(np.abs(w)).reshape(40, 4, 4)
    assert np.all(
        np.where(groups == 1, mags, np.inf).min(-1) >= np.where(groups == 0, mags, -1).max(-1)
    )
    assert describe_structure(to_matrix(w * mask)) == "2:4"


def test_global_threshold_spares_the_small_important_layer():
    big = rng.normal(0, 0.1, size=(256, 64))
    small = rng.normal(0, 1.0, size=(64, 16))  # larger weights: should keep more
    masks = compute_masks([np.abs(big), np.abs(small)], 0.8)
    total_zeros = sum((m == 0).sum() for m in masks)
    assert total_zeros == round(0.8 * (big.size + small.size))
    assert (masks[1] == 0).mean() < 0.3 < 0.8 < (masks[0] == 0).mean()


@pytest.mark.parametrize(
    "shape,block,n_m,match",
    [
        ((128, 10), (16, 4), None, r"does not fit the weight's output dimension \(10"),
        ((9, 32), (16, 4), None, r"does not divide the weight's input dimension \(9"),
        ((2, 32), (16, 4), None, r"does not fit the weight's input dimension \(2"),
        ((30, 8), (1, 1), (2, 4), r"divisible by 4; .* is \[8, 30\]"),
    ],
)
def test_structure_that_does_not_fit(shape, block, n_m, match):
    with pytest.raises(ValueError, match=match):
        check_structure(shape, block, n_m, "Layer 'fc'")
