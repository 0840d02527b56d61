"""The bottom layer: how a weight reads as an `[out, in]` matrix, and the kernels' block geometry.

Every other subpackage may import this one; it imports no other part of tfcompress.
"""

from tfcompress.core.blocks import (
    BLOCK_SHAPE,
    NM_PATTERN,
    SPARSE_MAX_DENSITY,
    block_density,
    describe_structure,
    expand_tiles,
    is_block_sparse,
    satisfies_n_m,
    tiles,
    zero_block_fraction,
)
from tfcompress.core.weights import (
    depthwise_to_matrix,
    from_matrix,
    matrix_shape,
    tflite_to_matrix,
    to_matrix,
    transpose_kernel_to_matrix,
)

__all__ = [
    "BLOCK_SHAPE",
    "NM_PATTERN",
    "SPARSE_MAX_DENSITY",
    "block_density",
    "depthwise_to_matrix",
    "describe_structure",
    "expand_tiles",
    "from_matrix",
    "is_block_sparse",
    "matrix_shape",
    "satisfies_n_m",
    "tflite_to_matrix",
    "tiles",
    "to_matrix",
    "transpose_kernel_to_matrix",
    "zero_block_fraction",
]
