"""tfcompress: make Keras 3 models small and fast for phones and edge devices."""

from tfcompress import datasets, models
from tfcompress.export import TFLiteFile, TFLiteModel, export_tflite
from tfcompress.report import CompressionReport, ReportComparison, report

__version__ = "0.1.0"

__all__ = [
    "CompressionReport",
    "ReportComparison",
    "TFLiteFile",
    "TFLiteModel",
    "datasets",
    "export_tflite",
    "models",
    "report",
]
