"""Compress to a target: per-layer sensitivity, a plan that meets the target, recipes."""

from tfcompress.planning.errors import InfeasibleTargetError
from tfcompress.planning.options import LayerOption, default_options
from tfcompress.planning.plan import plan
from tfcompress.planning.recipe import Recipe
from tfcompress.planning.sensitivity import sensitivity
from tfcompress.planning.sensitivity_result import Sensitivity, SensitivityEntry
from tfcompress.planning.target import Target

__all__ = [
    "InfeasibleTargetError",
    "LayerOption",
    "Recipe",
    "Sensitivity",
    "SensitivityEntry",
    "Target",
    "default_options",
    "plan",
    "sensitivity",
]
