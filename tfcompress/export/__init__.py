"""Conversion to `.tflite` and evaluation in the LiteRT interpreter."""

from tfcompress.export.flatbuffer import TFLiteFile
from tfcompress.export.interpreter import TFLiteModel
from tfcompress.export.tflite import MODES, export_tflite

__all__ = ["MODES", "TFLiteFile", "TFLiteModel", "export_tflite"]
