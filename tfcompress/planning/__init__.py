"""Compress to a target: per-layer sensitivity, a plan that meets the target, recipes."""

from tfcompress.planning.compress import compress
from tfcompress.planning.compression_result import CompressionResult
from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.options import LayerOption, default_options
from tfcompress.planning.plan import plan
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.sensitivity import sensitivity
from tfcompress.planning.sensitivity_result import Sensitivity, SensitivityEntry
from tfcompress.planning.target import Target

__all__ = [
    "CompressionResult",
    "InfeasibleTargetError",
    "LayerOption",
    "Recipe",
    "Sensitivity",
    "SensitivityEntry",
    "Target",
    "compress",
    "default_options",
    "plan",
    "sensitivity",
]
