"""Measurement: parameters, non-zeros, structure, MACs, sizes, accuracy and latency."""

from tfcompress.report.comparison import ReportComparison
from tfcompress.report.layer_specs import LayerSpec, register_layer
from tfcompress.report.layer_stats import LayerStats
from tfcompress.report.report import CompressionReport, gzip_size, report
from tfcompress.report.weights import WeightStats, describe_structure

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
