"""Magnitude pruning for Keras 3: schedules, unstructured / 16x4-block / N:M masks, global or
per-layer thresholds, driven by `model.fit` callbacks."""

from tfcompress.pruning.constant_sparsity import ConstantSparsity
from tfcompress.pruning.polynomial_decay import PolynomialDecay
from tfcompress.pruning.prunable import PrunableLayer, register_prunable
from tfcompress.pruning.prune import get_sparsity, prune_low_magnitude, strip_pruning
from tfcompress.pruning.prune_low_magnitude_wrapper import PruneLowMagnitude
from tfcompress.pruning.pruning_summaries import PruningSummaries
from tfcompress.pruning.schedule import PruningSchedule
from tfcompress.pruning.shrink import shrink
from tfcompress.pruning.update_pruning_step import UpdatePruningStep

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneLowMagnitude",
    "PruningSchedule",
    "PruningSummaries",
    "UpdatePruningStep",
    "get_sparsity",
    "prune_low_magnitude",
    "register_prunable",
    "shrink",
    "strip_pruning",
]
