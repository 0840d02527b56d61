"""`tfmot.sparsity.keras` on tfcompress's pruning."""

from tfcompress.compat.tfmot.sparsity.keras.prune import prune_low_magnitude, prune_scope
from tfcompress.compat.tfmot.sparsity.keras.update_pruning_step import UpdatePruningStep
from tfcompress.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    PrunableLayer,
    PruningSchedule,
    PruningSummaries,
    strip_pruning,
)

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruningSchedule",
    "PruningSummaries",
    "UpdatePruningStep",
    "prune_low_magnitude",
    "prune_scope",
    "strip_pruning",
]
