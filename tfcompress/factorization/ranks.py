"""Rank selection for `factorize`: fixed ranks, energy fractions, or a global budget.

Budget rule (`budget_ranks`): every selected layer starts at rank 1; then,
repeatedly, the one step that buys the most singular-value energy per added
parameter (or MAC) and still fits the budget is taken, until none fits. A
layer's energy is normalised by its own total (`s_i^2 / sum(s^2)`), so layers
of different scale compete fairly; a step adds one rank. For the channel
scheme a step adds one to `r_in` or to `r_out`, and the energy kept is taken
as the product of the two unfoldings' kept fractions (so that neither rank is
grown while the other starves the layer). A
layer stops growing where its factorized form would no longer be smaller than
the original; its last possible step is then to stay unfactorized, which buys
all its remaining energy for the rest of the original's cost.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass

import keras
import numpy as np

from tfcompress.factorization.costs import conv_macs, conv_weights, dense_macs, dense_weights
from tfcompress.factorization.decompose import channel_spectra, spatial_matrix
from tfcompress.factorization.factorized_conv2d import max_ranks
from tfcompress.factorization.svd import energy_rank, singular_values

MEASURES = ("params", "macs")
Ranks = tuple[int, ...]


@dataclass(frozen=True)
class Candidate:
    """A Dense or Conv2D layer `factorize` may replace: its shapes, costs and spectra.

    `scheme` is `"dense"`, `"spatial"` or `"channel"`; `explicit` says whether the
    user named the layer (errors instead of silently leaving it alone).
    """

    layer: keras.layers.Layer
    scheme: str
    explicit: bool

    @functools.cached_property
    def kernel(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.layer.kernel)

    @functools.cached_property
    def shapes(self) -> tuple[tuple, tuple]:
        """`(input_shape, output_shape)` with the batch dimension."""
        input_shape = tuple(self.layer.get_build_config()["input_shape"])
        return input_shape, tuple(self.layer.compute_output_shape(input_shape))

    @property
    def max_ranks(self) -> Ranks:
        if self.scheme == "dense":
            return (min(self.kernel.shape),)
        return max_ranks(self.scheme, self.kernel.shape)

    @functools.cached_property
    def spectra(self) -> tuple[np.ndarray, ...]:
        """Singular values per rank (one array; two for the channel scheme)."""
        if self.scheme == "dense":
            return (singular_values(self.kernel),)
        if self.scheme == "spatial":
            return (singular_values(spatial_matrix(self.kernel)),)
        return channel_spectra(self.kernel)

    def cost(self, ranks: Ranks | None, measure: str) -> int:
        """Kernel weights (`"params"`) or MACs (`"macs"`) at `ranks`; None: the original."""
        if self.scheme == "dense":
            fan_in, units = self.kernel.shape
            if measure == "params":
                return dense_weights(fan_in, units, ranks)
            return dense_macs(fan_in, units, ranks, self.shapes[1])
        scheme = None if ranks is None else self.scheme
        if measure == "params":
            return conv_weights(self.kernel.shape, scheme, ranks)
        return conv_macs(self.kernel.shape, scheme, ranks, *self.shapes)

    @property
    def fixed_size(self) -> bool:
        """Whether the input and output sizes are known (MACs need them)."""
        return all(d is not None for shape in self.shapes for d in shape[1:])

    def smaller(self, ranks: Ranks) -> bool:
        """Whether the factorized form has fewer weights and fewer MACs (where the sizes are
        known) than the original."""
        measures = MEASURES if self.fixed_size else ("params",)
        return all(self.cost(ranks, m) < self.cost(None, m) for m in measures)

    def within_limits(self, ranks: Ranks) -> bool:
        return all(r <= limit for r, limit in zip(ranks, self.max_ranks))

    def energy_ranks(self, energy: float) -> Ranks:
        return tuple(energy_rank(s, energy) for s in self.spectra)

    @functools.cached_property
    def kept_fractions(self) -> list[np.ndarray]:
        """Per spectrum, `[0, e_1, e_2, ...]`: the energy fraction kept at each rank."""
        out = []
        for s in self.spectra:
            squares = s.astype(np.float64) ** 2
            kept = np.cumsum(squares) / max(squares.sum(), np.finfo(np.float64).tiny)
            out.append(np.concatenate([[0.0], kept]))
        return out

    def kept(self, ranks: Ranks) -> float:
        """The energy fraction kept at `ranks` (for two spectra, the product of both)."""
        return float(np.prod([k[r] for k, r in zip(self.kept_fractions, ranks)]))


def budget_ranks(candidates: list[Candidate], fraction: float, measure: str) -> list[Ranks | None]:
    """Ranks (None: left alone) that keep `fraction` of the candidates' cost; see the module.

    Raises:
        ValueError: Even rank 1 everywhere costs more than the budget.
    """
    unknown = [c for c in candidates if measure == "macs" and not c.fixed_size]
    if unknown:
        raise ValueError(
            f"budget='macs' needs fixed input sizes; layer {unknown[0].layer.name!r} has input "
            f"shape {unknown[0].shapes[0]}. Use budget='params'."
        )
    total = sum(c.cost(None, measure) for c in candidates)
    budget = fraction * total
    ranks: list[Ranks | None] = [
        (1,) * len(c.max_ranks) if c.smaller((1,) * len(c.max_ranks)) else None for c in candidates
    ]
    spent = sum(c.cost(r, measure) for c, r in zip(candidates, ranks))
    if spent > budget:
        raise ValueError(
            f"`compression`={fraction} cannot be met: rank 1 in every selected layer keeps "
            f"{spent / total:.4f} of their {measure}. Received: compression={fraction}"
        )
    # Greedy by energy gained per unit of cost. A layer's next steps change only when it
    # is stepped, and a step that does not fit the budget now never will: a heap of
    # each layer's next steps (stale ones skipped) picks what a scan of all layers would.
    heap: list = []
    versions = [0] * len(candidates)

    def push(i: int) -> None:
        c, current = candidates[i], ranks[i]
        for j, (gain, new) in enumerate(_steps(c, current)):
            extra = c.cost(new, measure) - c.cost(current, measure)
            heapq.heappush(heap, (-gain / max(extra, 1), i, j, versions[i], new, extra))

    for i, current in enumerate(ranks):
        if current is not None:
            push(i)
    while heap:
        _, i, _, version, new, extra = heapq.heappop(heap)
        if version != versions[i] or spent + extra > budget:
            continue
        ranks[i], spent = new, spent + extra
        versions[i] += 1
        if new is not None:
            push(i)
    return ranks


def _steps(c: Candidate, ranks: Ranks) -> list[tuple[float, Ranks | None]]:
    """`(energy gained, new ranks)` for each next step of a layer (None: stay unfactorized)."""
    kept = c.kept(ranks)
    grown = []
    for mode in range(len(ranks)):
        new = tuple(r + (1 if m == mode else 0) for m, r in enumerate(ranks))
        if c.within_limits(new) and c.smaller(new):
            grown.append((c.kept(new) - kept, new))
    return grown or [(1.0 - kept, None)]
