"""TFLite sparse tensors: the schema's `SparsityParameters`, and their values made dense.

A sparse constant stores only some of its values, walked in `traversal_order`
over the tensor's dimensions and, for block sparsity, over block dimensions
(`block_map` says which tensor dimension each one splits). A DENSE level visits
every index below its `dense_size`; a SPARSE_CSR level visits, under each
parent position `p`, the indices `array_indices[array_segments[p]:
array_segments[p + 1]]`. The stored values are the leaves of that walk, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DENSE, SPARSE_CSR = 0, 1  # the schema's DimensionType
FORMAT_NAMES = {DENSE: "DENSE", SPARSE_CSR: "SPARSE_CSR"}


@dataclass(frozen=True)
class TensorSparsity:
    """How a sparse tensor's values are stored (the schema's `SparsityParameters`).

    Attributes:
        traversal_order: The order the stored levels walk: the tensor's own
            dimensions (`0..n-1`) first, then block dimensions (`n..`).
        block_map: For each block dimension, the tensor dimension it splits.
        formats: Each level's format (`DENSE` or `SPARSE_CSR`), in traversal order.
        dense_sizes: Each level's size (used by DENSE levels).
        segments: Each level's `array_segments` (empty for DENSE levels).
        indices: Each level's `array_indices` (empty for DENSE levels).
    """

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    formats: tuple[int, ...]
    dense_sizes: tuple[int, ...]
    segments: tuple[np.ndarray, ...]
    indices: tuple[np.ndarray, ...]

    @property
    def block_shape(self) -> tuple[int, ...]:
        """The size of each block dimension, in `block_map` order (empty: no blocks)."""
        rank = len(self.traversal_order) - len(self.block_map)
        return tuple(
            self.dense_sizes[self.traversal_order.index(rank + b)]
            for b in range(len(self.block_map))
        )

    @property
    def format_names(self) -> tuple[str, ...]:
        """Each level's format, `"DENSE"` or `"SPARSE_CSR"`, in traversal order."""
        return tuple(FORMAT_NAMES.get(f, f"FORMAT_{f}") for f in self.formats)

    @property
    def index_bytes(self) -> int:
        """Bytes of the segment and index arrays, stored beside the values."""
        return int(sum(a.nbytes for a in (*self.segments, *self.indices)))

    def _leaves(self) -> list[np.ndarray]:
        """Each level's index at every stored value, walking the levels in order."""
        parents = np.zeros(1, np.int64)
        levels: list[np.ndarray] = []
        for kind, size, segments, indices in zip(
            self.formats, self.dense_sizes, self.segments, self.indices
        ):
            if kind == DENSE:
                here = np.tile(np.arange(size, dtype=np.int64), len(parents))
                levels = [np.repeat(level, size) for level in levels] + [here]
                parents = np.repeat(parents, size) * size + here
            elif kind == SPARSE_CSR:
                if len(parents) and parents.max() + 1 >= len(segments):
                    raise ValueError(
                        f"A SPARSE_CSR level has {len(segments)} segment entries, too few "
                        f"for {int(parents.max()) + 1} parent positions."
                    )
                starts = segments[parents].astype(np.int64)
                counts = segments[parents + 1].astype(np.int64) - starts
                first = np.cumsum(counts) - counts  # where each parent's children begin
                children = np.repeat(starts - first, counts) + np.arange(counts.sum())
                levels = [np.repeat(level, counts) for level in levels]
                levels.append(indices[children].astype(np.int64))
                parents = children
            else:
                raise ValueError(f"Unknown dimension format {kind} (DENSE=0, SPARSE_CSR=1).")
        return levels

    @property
    def stored_values(self) -> int:
        """How many values the tensor stores."""
        levels = self._leaves()
        return len(levels[-1]) if levels else 0

    def densify(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The dense tensor of `shape` whose stored values, in traversal order, are `values`.

        Raises:
            ValueError: The parameters do not fit `shape`, or describe another
                number of values than `values` holds.
        """
        rank = len(shape)
        levels_given = len(self.formats)
        if (
            sorted(self.traversal_order[:rank]) != list(range(rank))
            or len(self.traversal_order) != rank + len(self.block_map)
            or levels_given != len(self.traversal_order)
        ):
            raise ValueError(
                f"Sparsity parameters do not fit a tensor of shape {tuple(shape)}: "
                f"traversal_order={self.traversal_order}, block_map={self.block_map}, "
                f"{levels_given} dimension metadata."
            )
        levels = self._leaves()
        count = len(levels[-1]) if levels else 0
        if count != len(values):
            raise ValueError(
                f"The sparsity parameters describe {count} stored values, the buffer holds "
                f"{len(values)}."
            )
        index: list = [None] * rank
        for level, dim in zip(levels[:rank], self.traversal_order[:rank]):
            index[dim] = level
        for level, block in zip(levels[rank:], self.traversal_order[rank:]):
            dim = self.block_map[block - rank]
            index[dim] = index[dim] * self.block_shape[block - rank] + level
        if any(np.any(i >= size) for i, size in zip(index, shape)):
            raise ValueError(f"Sparse indices fall outside the tensor's shape {tuple(shape)}.")
        dense = np.zeros(shape, dtype=values.dtype)
        dense[tuple(index)] = values
        return dense
