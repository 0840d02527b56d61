"""tfcompress: make Keras 3 models small and fast for phones and edge devices."""

from tfcompress import datasets, models, pruning
from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    UpdatePruningStep,
    get_sparsity,
    prune_low_magnitude,
    strip_pruning,
)
from tfcompress.report import CompressionReport, ReportComparison, report

__version__ = "0.1.0"

__all__ = [
    "CompressionReport",
    "ConstantSparsity",
    "PolynomialDecay",
    "UpdatePruningStep",
    "get_sparsity",
    "prune_low_magnitude",
    "pruning",
    "strip_pruning",
    "ReportComparison",
    "TFLiteFile",
    "TFLiteModel",
    "datasets",
    "export_tflite",
    "models",
    "report",
]
