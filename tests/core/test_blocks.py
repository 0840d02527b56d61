"""Tiles, block density and structure detection on [out, in] matrices."""

import numpy as np
import pytest

from tfcompress.core.blocks import (
    block_density,
    describe_structure,
    expand_tiles,
    is_block_sparse,
    satisfies_n_m,
    tiles,
    zero_block_fraction,
)

rng = np.random.default_rng(0)


def dense(rows, cols):
    return rng.normal(size=(rows, cols)) + 10.0  # no zeros


def test_dense():
    assert describe_structure(dense(32, 8)) == "dense"


def test_block_16x4_with_partial_edge_tiles():
    m = dense(40, 10)  # tiles: 3 x 3, the last row and column of tiles are partial
    m[16:32, 4:8] = 0
    m[32:40, 8:10] = 0  # a whole partial tile
    assert describe_structure(m) == "block 16x4"
    assert zero_block_fraction(m) == pytest.approx(2 / 9)
    assert block_density(m) == pytest.approx(7 / 9)


def test_zeros_outside_blocks():
    m = dense(32, 8)
    m[:16, :4] = 0  # 64 zeros in a tile
    m[20, 5] = 0  # one stray zero, as int8 rounding makes: still block-structured
    assert is_block_sparse(m)
    m[17:21, 4:8] = 0  # 16 more stray zeros: 80% of zeros in tiles
    assert not is_block_sparse(m)
    assert describe_structure(m) == "unstructured"


def test_two_of_four():
    m = dense(8, 12)
    m.reshape(8, 3, 4)[:, :, [0, 3]] = 0
    assert satisfies_n_m(m) and describe_structure(m) == "2:4"
    m[0, 0] = 5.0  # three non-zeros in one group
    assert not satisfies_n_m(m) and describe_structure(m) == "unstructured"


def test_n_m_needs_a_multiple_of_m():
    assert not satisfies_n_m(np.zeros((4, 6)) + np.eye(4, 6))


def test_random_unstructured_sparsity():
    m = dense(64, 64) * (rng.random((64, 64)) > 0.9)
    assert describe_structure(m) == "unstructured"


def test_tiles_pad_partial_edges_and_expand_back():
    m = np.arange(1, 41 * 6 + 1).reshape(41, 6)
    tiled = tiles(m, (16, 4))
    assert tiled.shape == (3, 16, 2, 4)
    assert tiled[2, 9:].sum() == 0 and tiled[:, :, 1, 2:].sum() == 0  # the zero padding
    per_tile = np.arange(6).reshape(3, 2)
    expanded = expand_tiles(per_tile, (16, 4), m.shape)
    assert expanded.shape == m.shape
    assert expanded[40, 5] == 5 and expanded[15, 3] == 0 and expanded[16, 4] == 3
