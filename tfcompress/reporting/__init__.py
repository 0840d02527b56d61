"""Measurement: parameters, non-zeros, structure, MACs, sizes, accuracy and latency."""

from tfcompress.core.blocks import describe_structure
from tfcompress.reporting.comparison import ReportComparison
from tfcompress.reporting.layer_specs import LayerSpec, register_layer
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.report import CompressionReport, gzip_size, report
from tfcompress.reporting.weights import WeightStats

__all__ = [
    "CompressionReport",
    "LayerSpec",
    "LayerStats",
    "ReportComparison",
    "WeightStats",
    "describe_structure",
    "gzip_size",
    "register_layer",
    "report",
]
