"""Conversion to `.tflite` and evaluation in the LiteRT interpreter."""

from tfcompress.export.converter import ConversionError
from tfcompress.export.flatbuffer import TFLiteFile
from tfcompress.export.interpreter import TFLiteModel
from tfcompress.export.kernel_comparison import compare_kernels, format_comparison
from tfcompress.export.onnx import export_onnx
from tfcompress.export.tflite import MODES, export_tflite

__all__ = [
    "MODES",
    "ConversionError",
    "TFLiteFile",
    "TFLiteModel",
    "compare_kernels",
    "export_onnx",
    "export_tflite",
    "format_comparison",
]
