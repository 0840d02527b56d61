"""Measurement: parameters, non-zeros, structure, MACs, sizes, accuracy and latency."""

from tfcompress.reporting.comparison import ReportComparison
from tfcompress.reporting.layer_specs import LayerSpec, register_layer
from tfcompress.reporting.layer_stats import LayerStats
from tfcompress.reporting.report import CompressionReport, gzip_size, report
from tfcompress.reporting.weights import WeightStats, describe_structure

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
