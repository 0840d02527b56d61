"""Compress to a target: per-layer sensitivity, a plan that meets the target, recipes."""

from tfcompress.planning.options import LayerOption, default_options
from tfcompress.planning.sensitivity import sensitivity
from tfcompress.planning.sensitivity_result import Sensitivity, SensitivityEntry

__all__ = ["LayerOption", "Sensitivity", "SensitivityEntry", "default_options", "sensitivity"]
